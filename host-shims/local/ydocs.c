/* Splitting YAML streams; see ydocs.h. */
#include <string.h>
#include <yaml.h>

#include "ydocs.h"

static json_t *convert(yaml_document_t *d, yaml_node_t *n, int depth)
{
    if (!n || depth > 64)
        return NULL;
    if (n->type == YAML_SCALAR_NODE)
        return json_stringn((const char *)n->data.scalar.value, n->data.scalar.length);
    if (n->type == YAML_SEQUENCE_NODE) {
        json_t *a = json_array();
        for (yaml_node_item_t *i = n->data.sequence.items.start;
             a && i < n->data.sequence.items.top; i++)
            json_array_append_new(a, convert(d, yaml_document_get_node(d, *i), depth + 1));
        return a;
    }
    json_t *o = json_object();
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; o && p < n->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(d, p->key);
        if (k && k->type == YAML_SCALAR_NODE) {
            char *key = strndup((const char *)k->data.scalar.value, k->data.scalar.length);
            if (key)
                json_object_set_new(o, key,
                                    convert(d, yaml_document_get_node(d, p->value), depth + 1));
            free(key);
        }
    }
    return o;
}

json_t *ydocs_split(const char *text, size_t len)
{
    size_t skip = strspn(text, " \t\r\n");
    if (skip < len && text[skip] == '{') { /* JSON; else a YAML flow mapping, read below */
        json_t *doc = json_loadb(text, len, 0, NULL);
        if (doc)
            return json_pack("[{s:s%, s:o}]", "text", text, len, "doc", doc);
    }
    yaml_parser_t p;
    json_t *out = json_array();
    if (!out || !yaml_parser_initialize(&p)) {
        json_decref(out);
        return NULL;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    for (;;) {
        yaml_document_t d;
        if (!yaml_parser_load(&p, &d)) {
            json_decref(out);
            out = NULL;
            break;
        }
        yaml_node_t *root = yaml_document_get_root_node(&d);
        if (!root) {
            yaml_document_delete(&d);
            break;
        }
        /* from the start of the root's line: an indented document keeps its indentation */
        size_t a = root->start_mark.index - root->start_mark.column, b = root->end_mark.index;
        json_t *doc = convert(&d, root, 0);
        if (b > len || a > b || !doc) {
            json_decref(doc);
            yaml_document_delete(&d);
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(out, json_pack("{s:s%, s:o}", "text", text + a, b - a, "doc", doc));
        yaml_document_delete(&d);
    }
    yaml_parser_delete(&p);
    return out;
}
