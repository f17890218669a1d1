/*
 * libFuzzer target: arbitrary bytes as a manifest stream through the loader, the schema walker,
 * the resolver and the admission rules (the first document doubles as the "previous" version so
 * the transition rules run too). Crashes, leaks, hangs and sanitizer reports are findings.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "spec/load.h"
#include "spec/schema.h"
#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mgo_plugin *plugin;
    json_t *docs = NULL, *report = NULL, *clusters = NULL;
    struct spec_load_error err;

    if (!plugin && mgo_open(NULL, &plugin) != MGO_OK)
        return 0;
    struct core_scope scope;
    core_enter(plugin, &scope);
    int rc = spec_load((const char *)data, size, &docs, &err);
    if (rc == 0 || docs) {
        struct spec_input in = {
            .docs = docs,
            .default_ns = "default",
            .previous = json_array_get(docs, 0),
        };
        if (spec_evaluate(&in, plugin->regex_cache, &report, &clusters) == 0) {
            json_decref(report);
            json_decref(clusters);
        }
    }
    json_decref(docs);
    core_leave(&scope);
    return 0;
}
