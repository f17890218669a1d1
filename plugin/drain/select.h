/*
 * The choices a drain makes (docs/spec/lifecycle.md, "Draining an instance"): whether a standby
 * may leave the synchronous set, which standby takes over from a draining primary, and the
 * synchronous_standby_names the primary gets. Pure functions over a snapshot of the shard that
 * the caller reads from PostgreSQL and the host: no I/O, no allocation, no blocking. Module prefix
 * drain_.
 *
 * Index arguments (`primary`, `victim`, `exclude`) are positions in `nodes`; `exclude` may be
 * SIZE_MAX for "none". A standby is any node other than the one at `primary` whose `primary` flag
 * is clear. A standby "can acknowledge commits now" when it is streaming, ready and not draining.
 *
 * `why`, when not NULL and why_size > 0, receives a lowercase reason (truncated to fit) whenever
 * a function refuses or fails; it is left untouched on success.
 */
#ifndef MGO_DRAIN_SELECT_H
#define MGO_DRAIN_SELECT_H

#include <stddef.h>
#include <stdint.h>

struct drain_node {
    const char *name; /* the instance name (its PostgreSQL cluster_name / application_name) */
    const char *cell; /* NULL is treated as "" */
    long index;       /* its index in its pool and cell */
    int ready;        /* the host reports it ready */
    int primary;      /* it is the shard's primary */
    int streaming;    /* a standby streaming from the primary (pg_stat_replication 'streaming') */
    int draining;     /* a drain is under way on it */
    uint64_t received_lsn, replayed_lsn; /* standbys */
    int unfit; /* never a switchover candidate (it lacks WAL the new primary needs), though it
                * still counts as a standby */
};

enum drain_policy { DRAIN_AT_LEAST_2, DRAIN_MULTI_CELL_AT_LEAST_2 };

/* The durabilityPolicy names "AT_LEAST_2" and "MULTI_CELL_AT_LEAST_2" (exact case). 0 and *ret,
 * or -EINVAL for NULL or any other name (*ret untouched). */
int drain_policy_parse(const char *name, enum drain_policy *ret);

/* Can the standbys that acknowledge commits now (leaving out `exclude`) satisfy policy `p` for
 * the primary at `primary`? AT_LEAST_2: at least one such standby; MULTI_CELL_AT_LEAST_2: at
 * least one in a cell other than the primary's. 1 if so; 0 with `why` (for example "no other
 * streaming standby outside cell a") if not; -EINVAL with `why` for nodes NULL, primary >= n or
 * an unknown policy. */
int drain_policy_satisfied(const struct drain_node *nodes, size_t n, enum drain_policy p,
                           size_t primary, size_t exclude, char *why, size_t why_size);

/* May standby `victim` leave the synchronous set (lifecycle.md, "Drain of a standby", step 2)?
 * The primary is the node whose `primary` flag is set. 1 when the standbys left without the
 * victim still satisfy the policy; 0 with `why` when they would not, or when the shard has no
 * single primary (retry later); -EINVAL with `why` when victim >= n, the victim is the primary
 * (it hands over by switchover instead), or the arguments are otherwise invalid. */
int drain_standby_may_leave(const struct drain_node *nodes, size_t n, enum drain_policy p,
                            size_t victim, char *why, size_t why_size);

/* The switchover candidate for the draining primary at `primary` ("Drain of the primary",
 * step 2): among the standbys that acknowledge commits now and are not `unfit`, the one with the
 * highest received LSN, then the highest replayed LSN, then the lowest index, then the lowest name
 * (strcmp), skipping every candidate after whose promotion the policy could not be satisfied by the
 * remaining standbys (the old primary excluded, cells compared with the candidate's). 0 and *ret;
 * -ENOENT with `why` when there is no such standby; -EINVAL with `why` for invalid arguments. */
int drain_pick_candidate(const struct drain_node *nodes, size_t n, enum drain_policy p,
                         size_t primary, size_t *ret, char *why, size_t why_size);

/* synchronous_standby_names for the primary at `primary`: ANY 1 ("a", "b") over every standby
 * except `exclude`, whether streaming or not, in the order of `nodes`; under
 * MULTI_CELL_AT_LEAST_2 only standbys in a cell other than the primary's. Names are written as
 * quoted PostgreSQL identifiers (an embedded '"' doubled). "" when no standby qualifies: the
 * caller must check drain_policy_satisfied first, as "" turns synchronous replication off.
 * 0 with out filled; -ERANGE when out (out_size bytes, NUL included) is too small; -EINVAL for
 * nodes NULL, out NULL, primary >= n, an unknown policy, or a listed standby with a NULL or empty
 * name. On failure out is untouched. */
int drain_sync_names(const struct drain_node *nodes, size_t n, enum drain_policy p, size_t primary,
                     size_t exclude, char *out, size_t out_size);

/* Does a synchronous_standby_names value name `name`? Parsed the way PostgreSQL reads it: an
 * optional FIRST/ANY and count, then identifiers, quoted ("" for a quote) or not, compared
 * case-insensitively as PostgreSQL compares them with application_name, or '*' (names every
 * standby). 1 when named, also for a value this parser cannot read (the safe answer: "still
 * waited on"); 0 when not. */
int drain_names_mention(const char *setting, const char *name);

/* The shape of a synchronous_standby_names value, parsed the way PostgreSQL reads it: "a, b"
 * (FIRST 1), "N (a, b)" (FIRST N), "ANY N (...)", "FIRST N (...)". *ret_num gets N (0 for an
 * empty value), *ret_names how many names the list holds, *ret_star whether one is '*'. 0, or
 * -EINVAL for a value this parser cannot read. */
int drain_names_shape(const char *setting, long *ret_num, size_t *ret_names, int *ret_star);

#endif
