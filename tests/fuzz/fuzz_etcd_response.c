/*
 * libFuzzer target: arbitrary bytes as an etcd JSON gateway answer (range, txn or watch kind)
 * for etcd_parse_range_response. Every call must return 0 or -EPROTO (or -ENOMEM), and on 0
 * produce key-values whose keys and values are NUL-terminated at their lengths.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "topo/etcd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct etcd_kvs kvs = {0};
    int rc = etcd_parse_range_response((const char *)data, size, &kvs);

    if (rc != 0 && rc != -EPROTO && rc != -ENOMEM)
        abort();
    if (rc != 0) {
        if (kvs.n != 0 || kvs.items != NULL) /* untouched on failure */
            abort();
        return 0;
    }
    for (size_t i = 0; i < kvs.n; i++) {
        const struct etcd_kv *kv = &kvs.items[i];
        if (!kv->key || !kv->value || kv->key[kv->key_len] != '\0' ||
            kv->value[kv->value_len] != '\0')
            abort();
    }
    etcd_kvs_fini(&kvs);
    return 0;
}
