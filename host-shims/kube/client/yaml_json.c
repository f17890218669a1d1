/* YAML (libyaml's document API) to a jansson value, for kubeconfig files. */
#include <errno.h>
#include <string.h>

#include <yaml.h>

#include "kc_internal.h"

#define MAX_NODES 10000
#define MAX_DEPTH 64

struct convert {
    yaml_document_t *doc;
    size_t visited;
    char *err;
    size_t err_len;
};

static bool scalar_is(const yaml_node_t *n, const char *const *words)
{
    for (; *words; words++)
        if (n->data.scalar.length == strlen(*words) &&
            memcmp(n->data.scalar.value, *words, n->data.scalar.length) == 0)
            return true;
    return false;
}

static json_t *scalar_to_json(const yaml_node_t *n)
{
    static const char *const truths[] = {"true", "True", "TRUE", "yes", "Yes",
                                         "YES",  "on",   "On",   "ON",  NULL};
    static const char *const falsehoods[] = {"false", "False", "FALSE", "no",  "No",
                                             "NO",    "off",   "Off",   "OFF", NULL};
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};

    if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
        if (scalar_is(n, truths))
            return json_true();
        if (scalar_is(n, falsehoods))
            return json_false();
        if (scalar_is(n, nulls))
            return json_null();
    }
    return json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
}

static int convert_node(struct convert *cv, yaml_node_t *n, int depth, json_t **ret)
{
    json_t *out = NULL;

    if (!n) {
        kc_errf(cv->err, cv->err_len, "a YAML node is missing");
        return -EINVAL;
    }
    if (++cv->visited > MAX_NODES || depth > MAX_DEPTH) {
        kc_errf(cv->err, cv->err_len, "more than %d YAML nodes or %d levels (aliases?)", MAX_NODES,
                MAX_DEPTH);
        return -EINVAL;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE:
        out = scalar_to_json(n);
        if (!out)
            return -ENOMEM; /* libyaml has checked the text is UTF-8 */
        break;
    case YAML_SEQUENCE_NODE:
        out = json_array();
        if (!out)
            return -ENOMEM;
        for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
             it++) {
            json_t *item;
            int rc = convert_node(cv, yaml_document_get_node(cv->doc, *it), depth + 1, &item);
            if (rc < 0) {
                json_decref(out);
                return rc;
            }
            if (json_array_append_new(out, item) < 0) { /* item is gone either way */
                json_decref(out);
                return -ENOMEM;
            }
        }
        break;
    case YAML_MAPPING_NODE:
        out = json_object();
        if (!out)
            return -ENOMEM;
        for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(cv->doc, p->key);
            json_t *value;
            char *key;
            int rc;

            if (!k || k->type != YAML_SCALAR_NODE) {
                kc_errf(cv->err, cv->err_len, "a mapping key is not a scalar");
                json_decref(out);
                return -EINVAL;
            }
            rc = convert_node(cv, yaml_document_get_node(cv->doc, p->value), depth + 1, &value);
            if (rc < 0) {
                json_decref(out);
                return rc;
            }
            key = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
            if (!key || json_object_set_new(out, key, value) < 0) { /* value is gone either way */
                if (!key)
                    json_decref(value);
                free(key);
                json_decref(out);
                return -ENOMEM;
            }
            free(key);
        }
        break;
    default:
        kc_errf(cv->err, cv->err_len, "an empty YAML node");
        return -EINVAL;
    }
    *ret = out;
    return 0;
}

int kc_yaml_to_json(const char *text, size_t len, json_t **ret, char *err, size_t err_len)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root;
    int rc;

    if (!yaml_parser_initialize(&parser))
        return -ENOMEM;
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        if (parser.error == YAML_MEMORY_ERROR) {
            rc = -ENOMEM;
        } else {
            kc_errf(err, err_len, "YAML: %s at line %zu column %zu",
                    parser.problem ? parser.problem : "syntax error", parser.problem_mark.line + 1,
                    parser.problem_mark.column + 1);
            rc = -EINVAL;
        }
        yaml_parser_delete(&parser);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    if (!root) {
        kc_errf(err, err_len, "the document is empty");
        rc = -EINVAL;
    } else {
        struct convert cv = {.doc = &doc, .err = err, .err_len = err_len};
        rc = convert_node(&cv, root, 0, ret);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}
