/*
 * Protocol buffers (protobuf-c messages) to and from JSON, generically through their descriptors,
 * in the shape of protobuf's JSON mapping with the .proto field names: zero values omitted,
 * enums by name, bytes as base64, maps as objects, int64 as JSON integers. Module prefix pbjson_.
 */
#ifndef MGO_TOPO_PBJSON_H
#define MGO_TOPO_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/* The protobuf-c allocator backed by the core allocator. */
extern ProtobufCAllocator pbjson_allocator;

/* Unpack `len` bytes as `desc` and convert to JSON (new reference). -EPROTO when the bytes do
 * not decode, -ENOMEM. */
int pbjson_decode(const ProtobufCMessageDescriptor *desc, const void *data, size_t len,
                  json_t **ret);

/* The JSON form of an unpacked message (new reference, NULL on ENOMEM). */
json_t *pbjson_from_message(const ProtobufCMessage *m);

/*
 * Build a message of `desc` from JSON (every field must exist in the descriptor and have a
 * fitting type; -EINVAL with the field's dotted path in `err` otherwise) and pack it into a new
 * buffer (core_free). When `keep_unknown` is given (a packed previous version of the record),
 * its fields unknown to mgo's schema are carried over unchanged.
 */
int pbjson_encode(const ProtobufCMessageDescriptor *desc, const json_t *value,
                  const void *keep_unknown, size_t keep_len, uint8_t **ret, size_t *ret_len,
                  char *err, size_t err_size);

#endif
