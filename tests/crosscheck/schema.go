package main

// The topology record schemas, written by hand from the facts (multigres-core.md §2.4, the
// record tables of proto/clustermetadata.proto at Multigres HEAD 6bd80b9b), not from mgo's
// sources and not from Multigres' generated Go types (that module cannot be fetched here).
// They are turned into real protobuf descriptors with protodesc, so decoding goes through
// Google's Go protobuf runtime exactly as Multigres' own proto.Unmarshal would: a wrong wire
// type or an undeclared field number shows up as an unknown field, bad UTF-8 in a string
// fails the decode.

import (
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/timestamppb" // registers google/protobuf/timestamp.proto
)

const protoPackage = "clustermetadata"

type fieldType = descriptorpb.FieldDescriptorProto_Type

const (
	tString  = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tBytes   = descriptorpb.FieldDescriptorProto_TYPE_BYTES
	tBool    = descriptorpb.FieldDescriptorProto_TYPE_BOOL
	tInt32   = descriptorpb.FieldDescriptorProto_TYPE_INT32
	tInt64   = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tUint32  = descriptorpb.FieldDescriptorProto_TYPE_UINT32
	tEnum    = descriptorpb.FieldDescriptorProto_TYPE_ENUM
	tMessage = descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
)

// f declares an optional (proto3 implicit presence) field. typeName is the message or enum
// name relative to the package ("ID", "ID.ComponentType"), or "" for scalars.
func f(name string, num int32, typ fieldType, typeName string) *descriptorpb.FieldDescriptorProto {
	fd := &descriptorpb.FieldDescriptorProto{
		Name:   proto.String(name),
		Number: proto.Int32(num),
		Label:  descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(),
		Type:   typ.Enum(),
	}
	if typeName != "" {
		if typeName[0] != '.' {
			typeName = "." + protoPackage + "." + typeName
		}
		fd.TypeName = proto.String(typeName)
	}
	return fd
}

// rep declares a repeated field.
func rep(name string, num int32, typ fieldType, typeName string) *descriptorpb.FieldDescriptorProto {
	fd := f(name, num, typ, typeName)
	fd.Label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	return fd
}

// inOneof puts a field into the message's oneof number idx.
func inOneof(fd *descriptorpb.FieldDescriptorProto, idx int32) *descriptorpb.FieldDescriptorProto {
	fd.OneofIndex = proto.Int32(idx)
	return fd
}

func msg(name string, fields ...*descriptorpb.FieldDescriptorProto) *descriptorpb.DescriptorProto {
	return &descriptorpb.DescriptorProto{Name: proto.String(name), Field: fields}
}

type ev struct {
	name string
	num  int32
}

func enum(name string, values ...ev) *descriptorpb.EnumDescriptorProto {
	e := &descriptorpb.EnumDescriptorProto{Name: proto.String(name)}
	for _, v := range values {
		e.Value = append(e.Value, &descriptorpb.EnumValueDescriptorProto{
			Name: proto.String(v.name), Number: proto.Int32(v.num),
		})
	}
	return e
}

// mapField adds `map<string, int32> name = num;` to m: a repeated field of a nested
// map-entry message, which is how a proto compiler lays a map out (and so its wire form).
func mapField(m *descriptorpb.DescriptorProto, name, entry string, num int32) {
	m.NestedType = append(m.NestedType, &descriptorpb.DescriptorProto{
		Name:    proto.String(entry),
		Field:   []*descriptorpb.FieldDescriptorProto{f("key", 1, tString, ""), f("value", 2, tInt32, "")},
		Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
	})
	m.Field = append(m.Field, rep(name, num, tMessage, m.GetName()+"."+entry))
}

// schemaFile is clustermetadata.proto as far as the records stored in etcd need it.
func schemaFile() *descriptorpb.FileDescriptorProto {
	// Global topology -------------------------------------------------------------------
	cell := msg("Cell",
		f("name", 1, tString, ""),
		rep("server_addresses", 2, tString, ""),
		f("root", 3, tString, ""))
	database := msg("Database",
		f("name", 1, tString, ""),
		f("backup_location", 2, tMessage, "BackupLocation"),
		rep("cells", 3, tString, ""),
		f("bootstrap_durability_policy", 4, tMessage, "DurabilityPolicy"))
	backupLocation := msg("BackupLocation",
		inOneof(f("filesystem", 1, tMessage, "FilesystemBackup"), 0),
		inOneof(f("s3", 2, tMessage, "S3Backup"), 0),
		f("require_initial_repo_encryption", 3, tBool, ""),
		f("authoritative_generation", 4, tInt64, ""))
	backupLocation.OneofDecl = []*descriptorpb.OneofDescriptorProto{{Name: proto.String("location")}}
	filesystemBackup := msg("FilesystemBackup", f("path", 1, tString, ""))
	s3Backup := msg("S3Backup",
		f("bucket", 1, tString, ""),
		f("region", 2, tString, ""),
		f("endpoint", 3, tString, ""),
		f("key_prefix", 4, tString, ""),
		f("use_env_credentials", 5, tBool, ""))
	durabilityPolicy := msg("DurabilityPolicy",
		f("policy_name", 1, tString, ""),
		f("policy_version", 2, tInt64, ""),
		f("quorum_type", 3, tEnum, "QuorumType"),
		f("required_count", 4, tInt32, ""),
		f("description", 5, tString, ""))
	quorumType := enum("QuorumType",
		ev{"QUORUM_TYPE_UNKNOWN", 0},
		ev{"QUORUM_TYPE_AT_LEAST_N", 3},
		ev{"QUORUM_TYPE_MULTI_CELL_AT_LEAST_N", 4})
	shardInitClaim := msg("ShardInitClaim",
		f("claimer_id", 1, tMessage, "ID"),
		rep("cohort_members", 2, tMessage, "ID"))

	// Identifiers -----------------------------------------------------------------------
	id := msg("ID",
		f("component", 1, tEnum, "ID.ComponentType"),
		f("cell", 2, tString, ""),
		f("name", 3, tString, ""))
	id.EnumType = []*descriptorpb.EnumDescriptorProto{enum("ComponentType",
		ev{"UNKNOWN", 0}, ev{"MULTIPOOLER", 1}, ev{"MULTIGATEWAY", 2}, ev{"MULTIORCH", 3})}
	shardKey := msg("ShardKey",
		f("database", 1, tString, ""),
		f("table_group", 2, tString, ""),
		f("shard", 3, tString, ""))
	keyRange := msg("KeyRange", f("start", 1, tBytes, ""), f("end", 2, tBytes, ""))

	// Cell topology ---------------------------------------------------------------------
	multipooler := msg("Multipooler",
		f("id", 1, tMessage, "ID"),
		f("shard_key", 2, tMessage, "ShardKey"),
		f("key_range", 5, tMessage, "KeyRange"),
		f("type", 6, tEnum, "PoolerType"),
		f("serving_status", 7, tEnum, "PoolerServingStatus"),
		f("hostname", 8, tString, ""))
	mapField(multipooler, "port_map", "PortMapEntry", 9)
	multipooler.Field = append(multipooler.Field,
		f("pooler_dir", 10, tString, ""),
		f("pg_data_dir", 11, tString, ""),
		f("lifecycle_status", 12, tMessage, "PoolerLifecycle"),
		f("routing_state", 13, tMessage, "RoutingState"))
	poolerType := enum("PoolerType",
		ev{"UNKNOWN", 0}, ev{"PRIMARY", 1}, ev{"REPLICA", 2}, ev{"DRAINED", 3})
	servingStatus := enum("PoolerServingStatus",
		ev{"SERVING", 0}, ev{"DISABLED", 1}, ev{"DRAINING", 4})
	lifecycle := msg("PoolerLifecycle",
		f("status", 1, tEnum, "PoolerLifecycleStatus"),
		f("reason", 2, tString, ""),
		f("updated", 3, tMessage, ".google.protobuf.Timestamp"))
	lifecycleStatus := enum("PoolerLifecycleStatus",
		ev{"LIFECYCLE_UNKNOWN", 0}, ev{"LIFECYCLE_STARTING", 1}, ev{"LIFECYCLE_ACTIVE", 2},
		ev{"LIFECYCLE_STOPPING", 3}, ev{"LIFECYCLE_SHUTDOWN", 4}, ev{"LIFECYCLE_QUARANTINED", 5})
	routingState := msg("RoutingState",
		f("role", 1, tEnum, "RoutingRole"),
		f("rule", 2, tMessage, "RuleNumber"))
	routingRole := enum("RoutingRole",
		ev{"ROUTING_ROLE_UNKNOWN", 0}, ev{"ROUTING_ROLE_PRIMARY", 1}, ev{"ROUTING_ROLE_REPLICA", 2})
	ruleNumber := msg("RuleNumber",
		f("coordinator_term", 1, tInt64, ""),
		f("leader_subterm", 2, tInt64, ""))

	multigateway := msg("Multigateway",
		f("id", 1, tMessage, "ID"),
		f("hostname", 2, tString, ""))
	mapField(multigateway, "port_map", "PortMapEntry", 3)
	multigateway.Field = append(multigateway.Field, f("pid_prefix", 4, tUint32, ""))
	multiorch := msg("Multiorch",
		f("id", 1, tMessage, "ID"),
		f("hostname", 2, tString, ""))
	mapField(multiorch, "port_map", "PortMapEntry", 3)

	return &descriptorpb.FileDescriptorProto{
		Name:       proto.String("crosscheck/clustermetadata.proto"),
		Package:    proto.String(protoPackage),
		Syntax:     proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			cell, database, shardInitClaim, backupLocation, filesystemBackup, s3Backup,
			multipooler, multigateway, shardKey, multiorch, id, keyRange,
			lifecycle, durabilityPolicy, ruleNumber, routingState,
		},
		EnumType: []*descriptorpb.EnumDescriptorProto{
			poolerType, lifecycleStatus, servingStatus, quorumType, routingRole,
		},
	}
}

// kinds maps the last element of a topology key to the message stored there
// (multigres-core.md §2.3).
var kinds = map[string]string{
	"Cell":           "Cell",
	"Database":       "Database",
	"ShardInitClaim": "ShardInitClaim",
	"Pooler":         "Multipooler",
	"Gateway":        "Multigateway",
	"Orch":           "Multiorch",
}

var schema protoreflect.FileDescriptor

func loadSchema() error {
	fd, err := protodesc.NewFile(schemaFile(), protoregistry.GlobalFiles)
	if err != nil {
		return fmt.Errorf("building the clustermetadata descriptors: %v", err)
	}
	schema = fd
	return nil
}

func messageDescriptor(name string) protoreflect.MessageDescriptor {
	d := schema.Messages().ByName(protoreflect.Name(name))
	if d == nil {
		panic("no message " + name + " in the schema")
	}
	return d
}
