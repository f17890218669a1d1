/* Manifest text (a YAML stream or JSON) to JSON documents (module prefix spec_load). */
#ifndef MGO_SPEC_LOAD_H
#define MGO_SPEC_LOAD_H

#include <jansson.h>
#include <stddef.h>

/* Where and why a manifest could not be read. line/column are 1-based; 0 when unknown. */
struct spec_load_error {
    size_t document; /* 0-based index of the document being read */
    size_t line;
    size_t column;
    char message[256];
};

/* Bounds that keep hostile input (alias bombs, deep nesting) from exhausting the host. */
#define SPEC_LOAD_MAX_DEPTH 64
#define SPEC_LOAD_MAX_NODES 1000000

/*
 * Read `text` (len bytes, UTF-8) as a YAML stream of documents, or as JSON when it starts with
 * '{' or '['. YAML uses the 1.2 core schema for plain scalars (null, booleans, integers, floats;
 * everything else is a string); quoted scalars are strings; anchors and aliases are expanded (a
 * copy per use). A document of kind "List" (or a top-level JSON array) contributes its items.
 * Empty documents are skipped. Duplicate keys, non-scalar keys, unknown tags, nesting deeper than
 * SPEC_LOAD_MAX_DEPTH and more than SPEC_LOAD_MAX_NODES expanded nodes are errors.
 *
 * On success returns 0 and *ret_docs receives a new array of the documents (caller owns it).
 * On a syntax error returns -EINVAL, fills *err, and *ret_docs receives the documents that were
 * complete before the error (possibly none). On allocation failure returns -ENOMEM and *ret_docs
 * is not written.
 */
int spec_load(const char *text, size_t len, json_t **ret_docs, struct spec_load_error *err);

#endif
