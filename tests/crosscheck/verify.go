package main

// crosscheck verify: every record under the global root and under each Cell's root is decoded
// with the descriptor for its kind, must carry no unknown field, and must equal the expected
// record field by field.

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// expectFile is the format of --expect: the topology keys and, for each, the record expected
// there in protojson form (proto field names or their JSON names; enum names or numbers).
//
//	{"records": {"/multigres/global/cells/z1/Cell": {"name": "z1", ...}, ...}}
//
// Every key found must be expected and every expected key must be found.
type expectFile struct {
	Comment string                     `json:"comment,omitempty"`
	Records map[string]json.RawMessage `json:"records"`
}

type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// record is one decoded topology value.
type record struct {
	key  string
	kind string
	msg  *dynamicpb.Message
	raw  []byte
}

func cmdVerify(args []string) error {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	etcd := fs.String("etcd", "", "etcd client URL (http://host:port)")
	root := fs.String("root", "/multigres/global", "the global topology root")
	var expects stringList
	fs.Var(&expects, "expect", "expectations file (JSON); repeat to merge several")
	printRecords := fs.Bool("print", false, "print every decoded record as protojson")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *etcd == "" || len(expects) == 0 || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck verify --etcd URL [--root ROOT] --expect FILE.json...")
		return errUsage
	}
	expected, err := loadExpectations(expects)
	if err != nil {
		return err
	}

	client := newEtcdClient(*etcd)
	records, problems, err := readTopology(client, path.Clean(*root))
	if err != nil {
		return err
	}
	if *printRecords {
		for _, r := range records {
			fmt.Printf("%s (%s):\n  %s\n", r.key, r.kind, protojsonString(r.msg))
		}
	}

	// Compare the keys both ways, then each record field by field.
	found := map[string]*record{}
	for _, r := range records {
		found[r.key] = r
	}
	keys := make([]string, 0, len(expected))
	for k := range expected {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	verified := 0
	for _, k := range keys {
		r, ok := found[k]
		if !ok {
			problems = append(problems, fmt.Sprintf("%s: expected, but no such key in etcd", k))
			continue
		}
		if r.msg == nil {
			continue // undecodable: already reported
		}
		want, err := parseExpected(k, r.kind, expected[k])
		if err != nil {
			return err
		}
		if diff := diffMessages(want, r.msg); len(diff) > 0 {
			problems = append(problems, fmt.Sprintf("%s: record differs from the expectation (- expected, + in etcd):\n%s\n    in etcd: %s",
				k, strings.Join(diff, "\n"), protojsonString(r.msg)))
			continue
		}
		if !proto.Equal(want, r.msg) { // the diff above should have caught anything
			problems = append(problems, fmt.Sprintf("%s: records differ (proto.Equal) but no field difference was found", k))
			continue
		}
		verified++
	}
	for _, r := range records {
		if _, ok := expected[r.key]; !ok && r.msg != nil { // (an undecodable one is reported already)
			problems = append(problems, fmt.Sprintf("%s: in etcd but not expected: %s", r.key, protojsonString(r.msg)))
		}
	}

	for _, p := range problems {
		fmt.Println("FAIL " + p)
	}
	if len(problems) > 0 {
		fmt.Printf("verify: %d problem(s); %d of %d expected records verified\n", len(problems), verified, len(expected))
		return errMismatch
	}
	fmt.Printf("verify: %d records verified\n", verified)
	return nil
}

func loadExpectations(files []string) (map[string]json.RawMessage, error) {
	all := map[string]json.RawMessage{}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var ef expectFile
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&ef); err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		if ef.Records == nil {
			return nil, fmt.Errorf("%s: no \"records\" object", name)
		}
		for k, v := range ef.Records {
			if _, dup := all[k]; dup {
				return nil, fmt.Errorf("%s: key %s is expected twice", name, k)
			}
			all[k] = v
		}
	}
	return all, nil
}

// parseExpected reads an expected record with the descriptor of the kind its key names.
func parseExpected(key, kind string, data json.RawMessage) (*dynamicpb.Message, error) {
	m := dynamicpb.NewMessage(messageDescriptor(kind))
	if err := protojson.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("expectation for %s (%s): %v", key, kind, err)
	}
	return m, nil
}

// readTopology reads every record under the global root and then under the root of each Cell
// found there (a cell root may lie under the global root, as with the operator's default, in
// which case it was read already). A value that does not decode, or decodes with unknown fields,
// is a problem; a key of an unknown kind too.
func readTopology(c *etcdClient, root string) ([]*record, []string, error) {
	var records []*record
	var problems []string
	seen := map[string]bool{}
	read := func(prefix string) ([]*record, error) {
		kvs, err := c.rangePrefix(prefix)
		if err != nil {
			return nil, err
		}
		var out []*record
		for _, kv := range kvs {
			key := string(kv.Key)
			if seen[key] {
				continue
			}
			seen[key] = true
			r, problem := decodeRecord(key, kv.Value)
			if problem != "" {
				problems = append(problems, problem)
			}
			out = append(out, r)
		}
		return out, nil
	}

	global, err := read(root + "/")
	if err != nil {
		return nil, nil, err
	}
	records = append(records, global...)
	cellRoots := map[string]bool{}
	for _, r := range global {
		if r.kind != "Cell" || r.msg == nil {
			continue
		}
		cellRoot := r.msg.Get(r.msg.Descriptor().Fields().ByName("root")).String()
		if cellRoot == "" || !strings.HasPrefix(cellRoot, "/") {
			problems = append(problems, fmt.Sprintf("%s: cell root %q is not an absolute path", r.key, cellRoot))
			continue
		}
		cellRoots[path.Clean(cellRoot)] = true
	}
	roots := make([]string, 0, len(cellRoots))
	for cr := range cellRoots {
		roots = append(roots, cr)
	}
	sort.Strings(roots)
	for _, cr := range roots {
		more, err := read(cr + "/")
		if err != nil {
			return nil, nil, err
		}
		records = append(records, more...)
	}
	return records, problems, nil
}

// decodeRecord decodes one value with the descriptor its key's last element names.
func decodeRecord(key string, value []byte) (*record, string) {
	r := &record{key: key, kind: path.Base(key), raw: value}
	msgName, ok := kinds[r.kind]
	if !ok {
		return r, fmt.Sprintf("%s: no record kind %q (value %s)", key, r.kind, hexShort(value))
	}
	r.kind = msgName
	m := dynamicpb.NewMessage(messageDescriptor(msgName))
	if err := (proto.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(value, m); err != nil {
		return r, fmt.Sprintf("%s: does not decode as %s: %v (value %s)", key, msgName, err, hexShort(value))
	}
	var unknown []string
	findUnknown(m, msgName, &unknown)
	if len(unknown) > 0 {
		return r, fmt.Sprintf("%s: %s with fields the schema does not have (or of the wrong wire type): %s (value %s)",
			key, msgName, strings.Join(unknown, "; "), hexShort(value))
	}
	r.msg = m
	if note := reencodeNote(m, value); note != "" {
		fmt.Printf("note: %s: %s\n", key, note)
	}
	return r, ""
}

// findUnknown lists, for m and every message inside it, the unknown fields Go's protobuf
// runtime kept: field numbers the descriptor lacks, and declared numbers that came with a wire
// type other than the declared one.
func findUnknown(m protoreflect.Message, where string, out *[]string) {
	if u := m.GetUnknown(); len(u) > 0 {
		b := []byte(u)
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 {
				*out = append(*out, fmt.Sprintf("%s: malformed unknown data", where))
				break
			}
			b = b[n:]
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				*out = append(*out, fmt.Sprintf("%s: malformed unknown field %d", where, num))
				break
			}
			b = b[n:]
			desc := fmt.Sprintf("%s: field %d (wire type %d)", where, num, typ)
			if fd := m.Descriptor().Fields().ByNumber(num); fd != nil {
				desc += fmt.Sprintf(", declared as %s %s: wrong wire type", fd.Kind(), fd.Name())
			}
			*out = append(*out, desc)
		}
	}
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		name := where + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.MessageKind {
				v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					findUnknown(mv.Message(), fmt.Sprintf("%s[%v]", name, k.Interface()), out)
					return true
				})
			}
		case fd.IsList():
			if fd.Kind() == protoreflect.MessageKind {
				for i := 0; i < v.List().Len(); i++ {
					findUnknown(v.List().Get(i).Message(), fmt.Sprintf("%s[%d]", name, i), out)
				}
			}
		case fd.Kind() == protoreflect.MessageKind:
			findUnknown(v.Message(), name, out)
		}
		return true
	})
}

// reencodeNote says when Go's deterministic encoding of the decoded record is not the stored
// byte string. That is not an error (field order, map order and explicit default values are
// all valid on the wire), only worth knowing.
func reencodeNote(m proto.Message, stored []byte) string {
	again, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "re-encoding failed: " + err.Error()
	}
	if bytes.Equal(again, stored) {
		return ""
	}
	return fmt.Sprintf("stored bytes %s differ from Go's deterministic encoding %s (same content)",
		hexShort(stored), hexShort(again))
}

func hexShort(b []byte) string {
	if len(b) > 512 {
		return hex.EncodeToString(b[:512]) + "…"
	}
	return hex.EncodeToString(b)
}

func protojsonString(m proto.Message) string {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	// protojson varies its spacing on purpose; normalise it for stable output.
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return string(b)
	}
	return buf.String()
}

// ---- field-by-field comparison --------------------------------------------------------------

// leaf is one populated value of a record, with its path (backup_location.filesystem.path,
// cells[1], port_map["grpc"]); a set message field is a leaf of its own ("{…}") so that an
// empty but present message still shows.
type leaf struct {
	path  string
	value string
}

func flatten(m protoreflect.Message, prefix string, out *[]leaf) {
	fields := m.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		name := prefix + string(fd.Name())
		v := m.Get(fd)
		switch {
		case fd.IsMap():
			mp := v.Map()
			var keys []protoreflect.MapKey
			mp.Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				keys = append(keys, k)
				return true
			})
			sort.Slice(keys, func(a, b int) bool {
				return fmt.Sprint(keys[a].Interface()) < fmt.Sprint(keys[b].Interface())
			})
			for _, k := range keys {
				p := fmt.Sprintf("%s[%s]", name, formatScalar(fd.MapKey(), k.Value()))
				addValue(fd.MapValue(), mp.Get(k), p, out)
			}
		case fd.IsList():
			l := v.List()
			*out = append(*out, leaf{name + ".length", strconv.Itoa(l.Len())})
			for j := 0; j < l.Len(); j++ {
				addValue(fd, l.Get(j), fmt.Sprintf("%s[%d]", name, j), out)
			}
		default:
			addValue(fd, v, name, out)
		}
	}
}

func addValue(fd protoreflect.FieldDescriptor, v protoreflect.Value, p string, out *[]leaf) {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		*out = append(*out, leaf{p, "{…}"})
		flatten(v.Message(), p+".", out)
		return
	}
	*out = append(*out, leaf{p, formatScalar(fd, v)})
}

func formatScalar(fd protoreflect.FieldDescriptor, v protoreflect.Value) string {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return strconv.Quote(v.String())
	case protoreflect.BytesKind:
		return "0x" + hex.EncodeToString(v.Bytes())
	case protoreflect.EnumKind:
		n := v.Enum()
		if ev := fd.Enum().Values().ByNumber(n); ev != nil {
			return fmt.Sprintf("%s (%d)", ev.Name(), n)
		}
		return fmt.Sprintf("%d (not a value of %s)", n, fd.Enum().FullName())
	default:
		return fmt.Sprint(v.Interface())
	}
}

// diffMessages returns one line per path whose value differs, in the order the fields appear.
func diffMessages(want, got protoreflect.ProtoMessage) []string {
	var wl, gl []leaf
	flatten(want.ProtoReflect(), "", &wl)
	flatten(got.ProtoReflect(), "", &gl)
	wm, gm := map[string]string{}, map[string]string{}
	var order []string
	for _, l := range wl {
		wm[l.path] = l.value
		order = append(order, l.path)
	}
	for _, l := range gl {
		if _, ok := wm[l.path]; !ok {
			order = append(order, l.path)
		}
		gm[l.path] = l.value
	}
	var diff []string
	for _, p := range order {
		w, wok := wm[p]
		g, gok := gm[p]
		if wok && gok && w == g {
			continue
		}
		if !wok {
			w = "<not set>"
		}
		if !gok {
			g = "<not set>"
		}
		diff = append(diff, fmt.Sprintf("    - %s: %s\n    + %s: %s", p, w, p, g))
	}
	return diff
}

var (
	errUsage    = errors.New("usage")
	errMismatch = errors.New("mismatch")
)
