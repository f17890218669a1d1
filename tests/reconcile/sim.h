/*
 * A simulated host for reconcile tests: it keeps observed objects, executes a pass's actions
 * the way a host would (apply, delete with preconditions, annotate, status), and stands in for
 * the drain hook (one drain step per pass; a primary hands its role to a ready standby before
 * it is released). It checks the lifecycle rules while it goes.
 */
#ifndef MGO_TEST_SIM_H
#define MGO_TEST_SIM_H

#include <jansson.h>
#include <stddef.h>

#include "mgo/mgo.h"

struct sim {
    mgo_plugin *p;
    const char *target;
    json_t *objects;  /* observed entries */
    json_t *status;   /* the last published status, or NULL */
    json_t *desired;  /* the last pass's desired objects, or NULL */
    json_t *previous; /* sent as the request's "previous" when set (owned) */
    long next_uid;
    int64_t clock_ms;
    char violation[512]; /* the first broken rule, or "" */
    /* figures of the last pass */
    size_t writes, deletes, events;
    /* totals since sim_init (or the last sim_reset_counts) */
    size_t drains_requested, instances_created, reloads;
};

void sim_reset_counts(struct sim *s);

/* The first observed object that the last pass's render does not want (a leftover), other
 * than a volume when `volumes_may_stay`; NULL when there is none. */
const char *sim_leftover(const struct sim *s, int volumes_may_stay);

void sim_init(struct sim *s, const char *target);
void sim_fini(struct sim *s);

/* One reconcile of `objects` (the cluster and its templates as JSON documents); executes the
 * actions. Returns the mgo_reconcile status; *ret_result gets the result when not NULL. */
int32_t sim_pass(struct sim *s, const json_t *objects, json_t **ret_result);

/* Passes until one makes no write (apply, delete, annotate, status); the number of passes
 * taken, or -1 when `bound` passes were not enough. */
int sim_converge(struct sim *s, const json_t *objects, int bound);

/* The observed instance names (Pods or Instances), sorted, joined by spaces. */
void sim_instances(const struct sim *s, char *out, size_t size);

#endif
