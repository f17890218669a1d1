// Command crosscheck checks the Multigres topology records mgo writes into etcd against the
// record schemas of Multigres, independently of mgo: the schemas are written from the facts
// (not from mgo's sources) and decoded and encoded by Google's Go protobuf runtime, the runtime
// Multigres itself uses.
//
//	crosscheck verify --etcd URL [--root /multigres/global] --expect FILE.json... [--print]
//	crosscheck put-pooler --etcd URL --key K --cell C --name N --role PRIMARY|REPLICA
//	    --lifecycle ACTIVE|SHUTDOWN|QUARANTINED --database D --table-group T --shard S --hostname H
//	crosscheck put-raw --etcd URL --key K --hex HEX
//
// Exit codes: 0 done, 1 a record is wrong (verify), 2 usage, 3 any other error (etcd
// unreachable, unreadable file).
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		usage()
		os.Exit(2)
	}
	if err := loadSchema(); err != nil {
		fmt.Fprintln(os.Stderr, "crosscheck:", err)
		os.Exit(3)
	}
	var err error
	switch os.Args[1] {
	case "verify":
		err = cmdVerify(os.Args[2:])
	case "put-pooler":
		err = cmdPutPooler(os.Args[2:])
	case "put-raw":
		err = cmdPutRaw(os.Args[2:])
	case "-h", "--help", "help":
		usage()
		return
	default:
		usage()
		os.Exit(2)
	}
	switch {
	case err == nil:
	case errors.Is(err, errMismatch):
		os.Exit(1)
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "crosscheck:", err)
		os.Exit(3)
	}
}

func usage() {
	fmt.Fprint(os.Stderr, `usage: crosscheck verify --etcd URL [--root ROOT] --expect FILE.json... [--print]
       crosscheck put-pooler --etcd URL --key K --cell C --name N --role PRIMARY|REPLICA
           --lifecycle ACTIVE|SHUTDOWN|QUARANTINED --database D --table-group T --shard S --hostname H
           [--ports grpc=N,...] [--updated RFC3339] [--term N] [--reason R]
       crosscheck put-raw --etcd URL --key K --hex HEX
`)
}
