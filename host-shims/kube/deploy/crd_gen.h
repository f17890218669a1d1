/*
 * The CRD generator of mgo-kube's deploy manifests (module prefix crdgen_): the
 * CustomResourceDefinitions of MultigresCluster, CoreTemplate, CellTemplate and ShardTemplate,
 * generated from the library's schema tables (plugin/spec/schema_tables.c) so that the API
 * server and `mgo validate` check the same fields, types and limits.
 *
 * gen_crds.c converts the tables to OpenAPI v3 and adds what they cannot say (crd_extra.c): the
 * CEL text of each cross-field rule, the status schema, server-side apply map types, printer
 * columns and names. crd_yaml.c writes the result as YAML.
 */
#ifndef MGO_KUBE_DEPLOY_CRD_GEN_H
#define MGO_KUBE_DEPLOY_CRD_GEN_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#include "spec/schema.h"

/* The CEL expression of one cross-field rule of the tables, found by the rule's message. */
struct crdgen_cel {
    const char *message; /* exactly the schema_rule's message */
    const char *rule;    /* CEL; reads oldSelf exactly when the schema_rule is a transition */
};

/* Every rule of the tables, in no particular order; ended by an entry with message NULL. */
extern const struct crdgen_cel crdgen_cel_rules[];

/*
 * A constraint the CRD adds to a node of the tables, found by the generator's path of the node
 * ("<Kind>.spec.x.y", "[]" for list items, "[*]" for map values): rules mgo's admission applies
 * that a schema can carry, so that an API server without mgo's webhook refuses the same input.
 */
struct crdgen_addition {
    const char *path;
    const char *const *enum_values; /* NULL-terminated */
};

/* Ended by an entry with path NULL; gen_crds fails when an entry matches no node. */
extern const struct crdgen_addition crdgen_additions[];

/* MultigresCluster.status: the reference's status fields and the ones mgo's reconcile writes
 * (docs/abi.md, mgo_reconcile "status"). The tables validate no status (SK_ANY). */
extern const struct schema_node crdgen_cluster_status;

/* The OpenAPI `format` of a node of crdgen_cluster_status, or NULL (the tables have no
 * formats). */
const char *crdgen_status_format(const struct schema_node *n);

/* Whether a node of crdgen_cluster_status accepts null (OpenAPI nullable). */
int crdgen_status_nullable(const struct schema_node *n);

/*
 * Whether an object node is one of the Kubernetes struct types the API declares atomic for
 * server-side apply (LabelSelector, NodeSelector, NodeSelectorTerm, LocalObjectReference),
 * recognised by its exact set of field names.
 */
int crdgen_is_atomic_struct(const struct schema_node *n);

struct crdgen_column {
    const char *name, *type, *json_path;
    int priority;
};

/* One kind: its names, its schema root and what the CRD adds around it. */
struct crdgen_kind {
    const char *kind, *plural, *singular, *short_name;
    const char *file; /* output file name */
    const struct schema_node *root;
    const struct schema_node *status; /* NULL: no status field and no status subresource */
    const struct crdgen_column *columns;
    size_t ncolumns;
};

extern const struct crdgen_kind crdgen_kinds[];
extern const size_t crdgen_nkinds;

/*
 * Write `doc` to `out` as one block-style YAML document (no leading "---"). Object keys keep
 * their insertion order; a string is written plain only when no YAML 1.1 or 1.2 reader could take
 * it for anything but that string, otherwise double-quoted. Returns 0, or -EINVAL for a value
 * YAML cannot carry here (a non-finite real), or -EIO when writing failed.
 */
int crdgen_yaml_write(FILE *out, const json_t *doc);

#endif
