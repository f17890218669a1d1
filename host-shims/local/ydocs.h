/*
 * Splitting a YAML stream (or a JSON document) into its documents, for the local host. The
 * library parses and validates manifests itself; the host needs two things it does not give
 * back: each document's own text (the cluster's, kept as the spec that converged and replaced
 * by `mgo scale`), and the superuser's password from a Secret document (which validation
 * skips). Call it on text the library has validated: only nesting depth is bounded here.
 */
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
