/* The desired topology of a resolved cluster (see model.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "spec/names.h"
#include "render/model.h"

static const char *str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static int is_delete(const json_t *policy, const char *field)
{
    const char *v = str(policy, field);
    return v && strcmp(v, "Delete") == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const struct model_cell *model_cell(const struct model *m, const char *name)
{
    for (size_t i = 0; i < m->ncells; i++)
        if (strcmp(m->cells[i].name, name) == 0)
            return &m->cells[i];
    return NULL;
}

void model_instance_name(const struct model_group *g, int index, char *out, size_t size)
{
    (void)snprintf(out, size, "%s-%d", g->pod_base, index);
}

long model_instance_index(const char *base, const char *name)
{
    size_t n = strlen(base);
    if (strncmp(name, base, n) != 0 || name[n] != '-' || name[n + 1] == '\0')
        return -1;
    const char *digits = name + n + 1;
    if (digits[0] == '0' && digits[1] != '\0')
        return -1; /* "-01" is not an index the scheme produces */
    long v = 0;
    for (const char *c = digits; *c; c++) {
        if (*c < '0' || *c > '9' || v > 100000000L)
            return -1;
        v = v * 10 + (*c - '0');
    }
    return v;
}

static int build_shard(struct model *m, const json_t *db, const json_t *tg, const json_t *sh,
                       struct model_shard *s)
{
    const json_t *spec = json_object_get(sh, "spec");
    const json_t *pools = json_object_get(spec, "pools");
    s->database = str(db, "name");
    s->tablegroup = str(tg, "name");
    s->shard = str(sh, "name");
    s->spec = spec;
    s->backup = json_object_get(sh, "backup");
    s->durability = str(db, "durabilityPolicy");
    if (!s->durability)
        s->durability = str(json_object_get(m->resolved, "spec"), "durabilityPolicy");
    if (!s->durability)
        s->durability = "AT_LEAST_2";
    if (!s->database || !s->tablegroup || !s->shard || !json_is_object(pools))
        return -EINVAL;
    const char *parts[8] = {m->cluster, s->database, s->tablegroup, s->shard};
    names_join(NAMES_DEFAULT, parts, 4, s->cr_name, sizeof(s->cr_name));

    /* Pools by name: JSON object order is the document's, which is not an identity. */
    size_t npools = json_object_size(pools), k = 0, total = 0;
    const char **names = core_calloc(npools ? npools : 1, sizeof(*names));
    if (!names)
        return -ENOMEM;
    const char *key;
    const json_t *pool;
    json_object_foreach ((json_t *)pools, key, pool) {
        names[k++] = key;
        total += json_array_size(json_object_get(pool, "cells"));
    }
    qsort(names, npools, sizeof(*names), cmp_str);
    s->groups = core_calloc(total ? total : 1, sizeof(*s->groups));
    if (!s->groups) {
        core_free(names);
        return -ENOMEM;
    }
    for (size_t i = 0; i < npools; i++) {
        pool = json_object_get(pools, names[i]);
        const json_t *policy = json_object_get(pool, "pvcDeletionPolicy");
        size_t c;
        const json_t *cell;
        json_array_foreach (json_object_get(pool, "cells"), c, cell) {
            struct model_group *g = &s->groups[s->ngroups++];
            g->pool = names[i];
            g->cell = json_string_value(cell);
            g->pool_spec = pool;
            g->replicas = (int)json_integer_value(json_object_get(pool, "replicasPerCell"));
            /* whenScaled unset counts as Delete, as in the reference's cleanup. */
            g->when_scaled_delete = !str(policy, "whenScaled") || is_delete(policy, "whenScaled");
            g->when_deleted_delete = is_delete(policy, "whenDeleted");
            if (!g->cell) {
                core_free(names);
                return -EINVAL;
            }
            const char *p[9] = {m->cluster, s->database, s->tablegroup, s->shard,
                                "pool",     g->pool,     g->cell,       "headless"};
            names_join(NAMES_POD, p, 7, g->pod_base, sizeof(g->pod_base));
            names_join(NAMES_SERVICE, p, 8, g->headless, sizeof(g->headless));
            p[7] = "pdb";
            names_join(NAMES_SERVICE, p, 8, g->pdb, sizeof(g->pdb));
        }
    }
    core_free(names);

    const json_t *orch = json_object_get(json_object_get(spec, "multiorch"), "cells");
    s->orch_cells = core_calloc(json_array_size(orch) + 1, sizeof(*s->orch_cells));
    if (!s->orch_cells)
        return -ENOMEM;
    size_t c;
    const json_t *cell;
    json_array_foreach (orch, c, cell)
        if (json_is_string(cell))
            s->orch_cells[s->norch++] = json_string_value(cell);
    return 0;
}

int model_build(const json_t *resolved, struct model *m)
{
    memset(m, 0, sizeof(*m));
    m->resolved = resolved;
    const json_t *meta = json_object_get(resolved, "metadata");
    const json_t *spec = json_object_get(resolved, "spec");
    m->cluster = str(meta, "name");
    m->ns = str(meta, "namespace") ? str(meta, "namespace") : "default";
    m->uid = str(meta, "uid");
    if (!m->cluster || !json_is_object(spec))
        return -EINVAL;

    const json_t *cells = json_object_get(spec, "cells");
    m->cells = core_calloc(json_array_size(cells) + 1, sizeof(*m->cells));
    if (!m->cells)
        return -ENOMEM;
    size_t i;
    const json_t *cell;
    json_array_foreach (cells, i, cell) {
        struct model_cell *c = &m->cells[m->ncells++];
        c->name = str(cell, "name");
        c->zone_id = str(cell, "zoneId");
        c->region = str(cell, "region");
        c->spec = json_object_get(cell, "spec");
        if (!c->name)
            return -EINVAL;
        const char *parts[2] = {m->cluster, c->name};
        names_join(NAMES_DEFAULT, parts, 2, c->cr_name, sizeof(c->cr_name));
    }

    size_t total = 0, d, t, s;
    const json_t *db, *tg, *sh;
    json_array_foreach (json_object_get(spec, "databases"), d, db)
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg)
            total += json_array_size(json_object_get(tg, "shards"));
    m->shards = core_calloc(total + 1, sizeof(*m->shards));
    if (!m->shards)
        return -ENOMEM;
    json_array_foreach (json_object_get(spec, "databases"), d, db)
        json_array_foreach (json_object_get(db, "tablegroups"), t, tg)
            json_array_foreach (json_object_get(tg, "shards"), s, sh) {
                int rc = build_shard(m, db, tg, sh, &m->shards[m->nshards++]);
                if (rc)
                    return rc;
            }
    return 0;
}

void model_free(struct model *m)
{
    for (size_t i = 0; i < m->nshards; i++) {
        core_free(m->shards[i].groups);
        core_free(m->shards[i].orch_cells);
    }
    core_free(m->shards);
    core_free(m->cells);
    memset(m, 0, sizeof(*m));
}
