/*
 * The desired topology of one resolved cluster: cells, shards, and per shard the pool x cell
 * groups of instances, with the names every render target and the reconcile diff share.
 * Built from the resolved MultigresCluster (plugin/spec/resolve.c), which it borrows: the
 * model's pointers stay valid while that document lives. Module prefix model_.
 */
#ifndef MGO_RENDER_MODEL_H
#define MGO_RENDER_MODEL_H

#include <jansson.h>
#include <stddef.h>

struct model_cell {
    const char *name;
    const char *zone_id; /* NULL when the cell names a region */
    const char *region;  /* NULL when the cell names a zone */
    const json_t *spec;  /* resolved cell "spec": multigateway, localTopoServer (may be absent) */
    char cr_name[254];   /* Join(Default, cluster, cell): the reference's Cell CR name */
};

/* One pool in one cell: instances base-0 .. base-(replicas-1). */
struct model_group {
    const char *pool;
    const char *cell;
    const json_t *pool_spec; /* resolved pool: storage, postgres, multipooler, affinity, ... */
    int replicas;            /* replicasPerCell */
    int when_scaled_delete;  /* effective pvcDeletionPolicy.whenScaled == Delete */
    int when_deleted_delete; /* effective pvcDeletionPolicy.whenDeleted == Delete */
    char pod_base[61];       /* Join(Pod, cluster, db, tg, shard, "pool", pool, cell) */
    char headless[64]; /* Join(Service, cluster, db, tg, shard, "pool", pool, cell, "headless") */
    char pdb[64];      /* Join(Service, ..., "pdb") */
};

struct model_shard {
    const char *database;
    const char *tablegroup;
    const char *shard;
    const json_t *spec;     /* resolved shard "spec": multiorch, pools, postgresConfig, ... */
    const json_t *backup;   /* resolved shard "backup" (may be NULL) */
    const char *durability; /* effective durability policy name */
    char cr_name[254];      /* Join(Default, cluster, db, tg, shard): the Shard CR name */
    size_t ngroups;
    struct model_group *groups; /* pools by name, then cells in the pool's order */
    size_t norch;
    const char **orch_cells; /* multiorch cells */
};

struct model {
    const json_t *resolved;
    const char *cluster;
    const char *ns;
    const char *uid; /* metadata.uid of the cluster, or NULL */
    size_t ncells;
    struct model_cell *cells;
    size_t nshards;
    struct model_shard *shards; /* databases, tablegroups, shards in spec order */
};

/* 0, -EINVAL (the document is not a resolved cluster: a bug upstream) or -ENOMEM. */
int model_build(const json_t *resolved, struct model *m);
void model_free(struct model *m);

/* The cell named `name`, or NULL. */
const struct model_cell *model_cell(const struct model *m, const char *name);

/* "<pod_base>-<index>" into out (size >= 72). */
void model_instance_name(const struct model_group *g, int index, char *out, size_t size);

/* Parse the index of an instance name "<base>-<n>" for base `base`: n >= 0, or -1 when the
 * name does not have that form (the reference's "unparseable index"). */
long model_instance_index(const char *base, const char *name);

#endif
