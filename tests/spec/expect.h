/* Assertions on resolved documents, shared by the spec tests (they fail the cmocka test). */
#ifndef MGO_TESTS_SPEC_EXPECT_H
#define MGO_TESTS_SPEC_EXPECT_H

#include <jansson.h>

/* Follow a dotted path with [i] indexes and [key] map keys, e.g. "spec.cells[0].name". */
const json_t *at(const json_t *v, const char *path);
void expect_str(const json_t *doc, const char *path, const char *want);
void expect_int(const json_t *doc, const char *path, json_int_t want);
void expect_json(const json_t *doc, const char *path, const char *want_json);
void expect_absent(const json_t *doc, const char *path);

#endif
