/* Splitting a YAML stream (or a JSON document) into its documents, for the local host. */
#ifndef MGO_LOCAL_YDOCS_H
#define MGO_LOCAL_YDOCS_H

#include <jansson.h>
#include <stddef.h>

/*
 * The documents of `text`: [{"text": the document's own text, "doc": its content with every
 * scalar as a string}] (json_decref), or NULL when the text is not a readable stream (the
 * library's validation then says where). A JSON object is one document whose "doc" keeps its
 * types.
 */
json_t *ydocs_split(const char *text, size_t len);

#endif
