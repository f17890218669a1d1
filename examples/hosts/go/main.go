package main

import (
	"fmt"
	"os"
)

const usage = `usage: go-host FILE [LIBRARY]
Validate the manifests in FILE with libmgo (LIBRARY, else $MGO_LIBRARY, else
libmgo.so.1). Exit status: 0 valid, 1 invalid, 2 usage, file or library error.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func logLevelFromEnv() int {
	switch os.Getenv("MGO_LOG_LEVEL") {
	case "error":
		return LogError
	case "info":
		return LogInfo
	case "debug":
		return LogDebug
	}
	return LogWarn
}

func run(args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help") {
		fmt.Print(usage)
		return 0
	}
	if len(args) < 1 || len(args) > 2 || args[0] == "" {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	file, opts := args[0], Options{LogLevel: logLevelFromEnv()}
	if len(args) == 2 {
		opts.Library = args[1]
	}

	m, err := Open(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "host: %v\n", err)
		return 2
	}
	defer m.Close()
	text, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(os.Stderr, "host: cannot read %s: %v\n", file, err)
		return 2
	}
	status, result, err := m.Validate([]Manifest{{Source: file, Text: string(text)}})
	if err != nil {
		fmt.Fprintf(os.Stderr, "host: %v\n", err)
		return 2
	}

	errorCount := 0
	for _, o := range result.Objects {
		source := o.Source
		if source == "" {
			source = file
		}
		for _, e := range o.Errors {
			fmt.Println(finding(source, e, ""))
			errorCount++
		}
		for _, w := range o.Warnings {
			fmt.Fprintln(os.Stderr, finding(source, w, "warning: "))
		}
	}
	message := m.Strerror(status)
	if result.Error != nil && result.Error.Message != "" {
		message = result.Error.Message
	}
	switch status {
	case StatusOK:
		fmt.Printf("%s: valid\n", file)
		return 0
	case StatusInvalid:
		if errorCount == 0 { // the request itself was rejected
			fmt.Fprintf(os.Stderr, "host: %s\n", message)
		}
		plural := "s"
		if errorCount == 1 {
			plural = ""
		}
		fmt.Printf("%s: %d error%s\n", file, errorCount, plural)
		return 1
	}
	fmt.Fprintf(os.Stderr, "host: mgo_validate: %s\n", message)
	return 2
}

// finding formats "SOURCE: path: reason" ("SOURCE: reason" for a document-level finding).
func finding(source string, f Finding, prefix string) string {
	if f.Path == "" {
		return fmt.Sprintf("%s: %s%s", source, prefix, f.Reason)
	}
	return fmt.Sprintf("%s: %s: %s%s", source, f.Path, prefix, f.Reason)
}
