/*
 * libFuzzer target: arbitrary bytes as the host's observed state ("observed": objects and
 * status) of a reconcile pass over a fixed, valid two-cell cluster, for both render targets.
 * The observed state is the least trusted input of a pass: whatever it holds, the pass must
 * return a known status and a NUL-terminated JSON result of the reported length.
 */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mgo/mgo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char cluster[] =
    "apiVersion: multigres.com/v1alpha1\nkind: MultigresCluster\n"
    "metadata: {name: fz, namespace: default}\n"
    "spec:\n  postgresPasswordSecretRef: {name: pw, key: password}\n"
    "  cells: [{name: a, zoneId: z1}, {name: b, region: r1}]\n"
    "  databases:\n  - name: postgres\n    default: true\n    tablegroups:\n"
    "    - name: default\n      default: true\n      shards:\n      - name: 0-inf\n"
    "        spec:\n          postgresConfig: {shared_buffers: 128MB, work_mem: 4MB}\n"
    "          pools: {main: {replicasPerCell: 3, cells: [a, b]}}\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static mgo_plugin *plugin;
    static const char *const targets[] = {"kubernetes", "process"};
    if (!plugin && mgo_open(NULL, &plugin) != MGO_OK)
        return 0;
    json_t *observed = json_loadb((const char *)data, size, 0, NULL);
    if (!observed)
        return 0;
    for (int t = 0; t < 2; t++) {
        json_t *req =
            json_pack("{s:s, s:s, s:O, s:{s:b}, s:b}", "manifests", cluster, "target", targets[t],
                      "observed", observed, "topology", "register", 0, "include_desired", 1);
        char *text = req ? json_dumps(req, JSON_COMPACT) : NULL, *out = NULL;
        size_t len = 0;
        json_decref(req);
        if (!text)
            break;
        int32_t rc = mgo_reconcile(plugin, text, strlen(text), &out, &len);
        free(text);
        if (rc > 0 || rc < MGO_EINTERNAL || (out && (strlen(out) != len || out[0] != '{')))
            abort();
        mgo_free(out);
    }
    json_decref(observed);
    return 0;
}
