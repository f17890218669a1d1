/*
 * libFuzzer target: arbitrary bytes as a stored topology value of every record kind (Cell,
 * Database, Pooler, Gateway, Orch, ShardInitClaim) through topo_decode(). Every call must return
 * 0, -EPROTO or -ENOMEM. When a decode succeeds, its JSON goes back through topo_encode() and
 * topo_decode() (the pbjson round trip): the second decode must equal the first, and encoding
 * that again must give the same bytes. Anything else aborts; crashes, leaks and sanitizer
 * reports are findings too.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "topo/topo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const enum topo_kind kinds[] = {TOPO_CELL,    TOPO_DATABASE, TOPO_POOLER,
                                       TOPO_GATEWAY, TOPO_ORCH,     TOPO_CLAIM};

static void finding(enum topo_kind kind, const char *what, const json_t *a, const json_t *b)
{
    char *ja = a ? json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    char *jb = b ? json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    fprintf(stderr, "fuzz_topo_records: kind %d: %s\n  first:  %s\n  second: %s\n", (int)kind, what,
            ja ? ja : "-", jb ? jb : "-");
    abort();
}

static void round_trip(enum topo_kind kind, const json_t *first)
{
    uint8_t *bytes = NULL, *again = NULL;
    size_t len = 0, again_len = 0;
    char err[256] = "";
    json_t *second = NULL;

    int rc = topo_encode(kind, first, &bytes, &len, err, sizeof(err));
    if (rc == -ENOMEM)
        return;
    if (rc != 0) {
        fprintf(stderr, "topo_encode: %d %s\n", rc, err);
        finding(kind, "a decoded record does not encode", first, NULL);
    }
    rc = topo_decode(kind, bytes, len, &second);
    if (rc == -ENOMEM) {
        core_free(bytes);
        return;
    }
    if (rc != 0)
        finding(kind, "the encoding of a decoded record does not decode", first, NULL);
    if (!json_equal(first, second))
        finding(kind, "decode(encode(decode(x))) differs from decode(x)", first, second);
    rc = topo_encode(kind, second, &again, &again_len, err, sizeof(err));
    if (rc == 0 && (again_len != len || memcmp(again, bytes, len) != 0))
        finding(kind, "encoding the same record twice gives different bytes", first, second);
    if (rc != 0 && rc != -ENOMEM)
        finding(kind, "a record that encoded once does not encode again", first, second);
    core_free(again);
    core_free(bytes);
    json_decref(second);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mgo_plugin *plugin;
    if (!plugin && mgo_open(NULL, &plugin) != MGO_OK)
        return 0;
    struct core_scope scope;
    core_enter(plugin, &scope);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        json_t *first = NULL;
        int rc = topo_decode(kinds[k], data, size, &first);
        if (rc != 0 && rc != -EPROTO && rc != -ENOMEM)
            abort();
        if (rc != 0)
            continue;
        if (!json_is_object(first))
            finding(kinds[k], "a decode is not a JSON object", first, NULL);
        round_trip(kinds[k], first);
        json_decref(first);
    }
    core_leave(&scope);
    return 0;
}
