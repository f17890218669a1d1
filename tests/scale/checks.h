/*
 * cmocka checks shared by the scale and rolling-update tests (each fails the running test).
 */
#ifndef MGO_TESTS_SCALE_CHECKS_H
#define MGO_TESTS_SCALE_CHECKS_H

#include "scenario.h"

/* phost_converge within timeout_ms, and no violation seen by the observer. */
void check_converge(struct scenario *s, int timeout_ms, const char *what);

/* Writes go on and no acknowledged commit is missing on the current primary. */
void check_writes(struct scenario *s, const char *when);

/* The name of the instance of spec.index `index` (it must exist). */
const char *check_name_at(struct scenario *s, int index);

/* The primary's synchronous_standby_names is exactly ANY 1 over the instances of these
 * indexes, in this order, each name double-quoted (docs/abi.md "mgo_converge"). */
void check_sync_set(struct scenario *s, const int *indexes, int n);

/* `standbys` connections stream from the primary (waits up to 10 s). */
void check_streaming(struct scenario *s, int standbys);

#endif
