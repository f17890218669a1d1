package main

// crosscheck put-pooler: a Multipooler record as a multipooler publishes it (multigres-core.md
// §2.4, §2.6), encoded by Google's Go protobuf runtime, put at the given key.

import (
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
)

// set assigns a field of m by name; v is a Go value protoreflect.ValueOf accepts, or an
// enum value name for enum fields.
func set(m *dynamicpb.Message, name string, v interface{}) {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("%s has no field %s", m.Descriptor().FullName(), name))
	}
	if s, ok := v.(string); ok && fd.Kind() == protoreflect.EnumKind {
		ev := fd.Enum().Values().ByName(protoreflect.Name(s))
		if ev == nil {
			panic(fmt.Sprintf("%s has no value %s", fd.Enum().FullName(), s))
		}
		v = ev.Number()
	}
	m.Set(fd, protoreflect.ValueOf(v))
}

// child returns the message held by m's message field name, creating it.
func child(m *dynamicpb.Message, name string) *dynamicpb.Message {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	return m.Mutable(fd).Message().Interface().(*dynamicpb.Message)
}

type poolerSpec struct {
	cell, name, role, lifecycle, database, tableGroup, shard, hostname string
	poolerDir, pgDataDir, reason                                       string
	ports                                                              map[string]int32
	term                                                               int64
	updated                                                            time.Time
}

// buildPooler lays the record out as the pooler does (§2.4 Multipooler): the deprecated type is
// derived (SHUTDOWN → UNKNOWN; PRIMARY iff routing role PRIMARY; else REPLICA); routing_state
// has role and rule for the writable primary, role only for the others, and is unset while
// shutting down; a pooler that has shut down stopped serving (DISABLED) first.
func buildPooler(s poolerSpec) (*dynamicpb.Message, error) {
	if strings.Contains(s.cell, "_") || strings.Contains(s.name, "_") {
		return nil, fmt.Errorf("neither cell nor name may contain '_' (they make the application_name)")
	}
	if len(s.cell)+1+len(s.name) > 63 {
		return nil, fmt.Errorf("%q is longer than 63 characters", s.cell+"_"+s.name)
	}
	var routingRole, poolerType string
	switch s.role {
	case "PRIMARY":
		routingRole, poolerType = "ROUTING_ROLE_PRIMARY", "PRIMARY"
	case "REPLICA":
		routingRole, poolerType = "ROUTING_ROLE_REPLICA", "REPLICA"
	default:
		return nil, fmt.Errorf("--role must be PRIMARY or REPLICA, not %q", s.role)
	}
	serving := "SERVING"
	switch s.lifecycle {
	case "ACTIVE":
	case "QUARANTINED":
		serving = "DISABLED"
	case "SHUTDOWN":
		serving, poolerType, routingRole = "DISABLED", "UNKNOWN", ""
	default:
		return nil, fmt.Errorf("--lifecycle must be ACTIVE, SHUTDOWN or QUARANTINED, not %q", s.lifecycle)
	}

	m := dynamicpb.NewMessage(messageDescriptor("Multipooler"))
	id := child(m, "id")
	set(id, "component", "MULTIPOOLER")
	set(id, "cell", s.cell)
	set(id, "name", s.name)
	sk := child(m, "shard_key")
	set(sk, "database", s.database)
	set(sk, "table_group", s.tableGroup)
	set(sk, "shard", s.shard)
	set(m, "type", poolerType)
	set(m, "serving_status", serving)
	set(m, "hostname", s.hostname)
	portMap := m.Mutable(m.Descriptor().Fields().ByName("port_map")).Map()
	for k, v := range s.ports {
		portMap.Set(protoreflect.ValueOfString(k).MapKey(), protoreflect.ValueOfInt32(v))
	}
	set(m, "pooler_dir", s.poolerDir)
	set(m, "pg_data_dir", s.pgDataDir)
	lc := child(m, "lifecycle_status")
	set(lc, "status", "LIFECYCLE_"+s.lifecycle)
	if s.reason != "" {
		set(lc, "reason", s.reason)
	}
	ts := child(lc, "updated")
	set(ts, "seconds", s.updated.Unix())
	set(ts, "nanos", int32(s.updated.Nanosecond()))
	if routingRole != "" {
		rs := child(m, "routing_state")
		set(rs, "role", routingRole)
		if routingRole == "ROUTING_ROLE_PRIMARY" && s.lifecycle == "ACTIVE" {
			set(child(rs, "rule"), "coordinator_term", s.term)
		}
	}
	return m, nil
}

func parsePorts(s string) (map[string]int32, error) {
	ports := map[string]int32{}
	if s == "" {
		return ports, nil
	}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(item, "=")
		n, err := strconv.ParseInt(v, 10, 32)
		if !ok || k == "" || err != nil {
			return nil, fmt.Errorf("--ports: %q is not NAME=PORT", item)
		}
		ports[k] = int32(n)
	}
	return ports, nil
}

func cmdPutPooler(args []string) error {
	fs := flag.NewFlagSet("put-pooler", flag.ContinueOnError)
	etcd := fs.String("etcd", "", "etcd client URL")
	key := fs.String("key", "", "the etcd key: <cell root>/poolers/multipooler-<cell>-<name>/Pooler")
	var s poolerSpec
	fs.StringVar(&s.cell, "cell", "", "id.cell")
	fs.StringVar(&s.name, "name", "", "id.name (the service id)")
	fs.StringVar(&s.role, "role", "", "PRIMARY or REPLICA")
	fs.StringVar(&s.lifecycle, "lifecycle", "ACTIVE", "ACTIVE, SHUTDOWN or QUARANTINED")
	fs.StringVar(&s.database, "database", "", "shard_key.database")
	fs.StringVar(&s.tableGroup, "table-group", "default", "shard_key.table_group")
	fs.StringVar(&s.shard, "shard", "0-inf", "shard_key.shard")
	fs.StringVar(&s.hostname, "hostname", "", "hostname")
	fs.StringVar(&s.poolerDir, "pooler-dir", "/var/lib/pooler", "pooler_dir")
	fs.StringVar(&s.pgDataDir, "pg-data-dir", "/var/lib/pooler/pg_data", "pg_data_dir")
	fs.StringVar(&s.reason, "reason", "", "lifecycle_status.reason")
	fs.Int64Var(&s.term, "term", 1, "routing_state.rule.coordinator_term of a primary")
	ports := fs.String("ports", "grpc=15270,http=15200,postgres=5432,pgbackrest=8432", "port_map as NAME=PORT,...")
	updated := fs.String("updated", "", "lifecycle_status.updated, RFC 3339 (default: now)")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if *etcd == "" || *key == "" || s.cell == "" || s.name == "" || s.role == "" || s.database == "" ||
		s.hostname == "" || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck put-pooler --etcd URL --key K --cell C --name N --role PRIMARY|REPLICA "+
			"--lifecycle ACTIVE|SHUTDOWN|QUARANTINED --database D --table-group T --shard S --hostname H")
		return errUsage
	}
	var err error
	if s.ports, err = parsePorts(*ports); err != nil {
		return err
	}
	s.updated = time.Now().UTC()
	if *updated != "" {
		if s.updated, err = time.Parse(time.RFC3339Nano, *updated); err != nil {
			return fmt.Errorf("--updated: %v", err)
		}
	}
	if want := "multipooler-" + s.cell + "-" + s.name; path.Base(*key) != "Pooler" || path.Base(path.Dir(*key)) != want {
		fmt.Fprintf(os.Stderr, "warning: Multigres keeps this pooler at <cell root>/poolers/%s/Pooler, not %s\n", want, *key)
	}
	m, err := buildPooler(s)
	if err != nil {
		return err
	}
	value, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return err
	}
	if err := newEtcdClient(*etcd).put(*key, value); err != nil {
		return err
	}
	fmt.Printf("put %s (%d bytes): %s\n", *key, len(value), protojsonString(m))
	return nil
}

// cmdPutRaw puts a value given in hex, to plant records mgo would never write (the negative
// tests: unknown fields, wrong wire types, garbage).
func cmdPutRaw(args []string) error {
	fs := flag.NewFlagSet("put-raw", flag.ContinueOnError)
	etcd := fs.String("etcd", "", "etcd client URL")
	key := fs.String("key", "", "the etcd key")
	value := fs.String("hex", "", "the value, in hex")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	b, err := hex.DecodeString(*value)
	if *etcd == "" || *key == "" || err != nil || fs.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: crosscheck put-raw --etcd URL --key K --hex HEX")
		return errUsage
	}
	return newEtcdClient(*etcd).put(*key, b)
}
