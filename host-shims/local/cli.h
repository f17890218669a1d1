/* What every `mgo` command shares: its exit codes and how it prints validation findings. */
#ifndef MGO_LOCAL_CLI_H
#define MGO_LOCAL_CLI_H

#include <jansson.h>

/* Exit codes (documented in `mgo --help`, README.md and docs/local.md). */
enum {
    MGO_EXIT_OK = 0,         /* done; every object valid */
    MGO_EXIT_INVALID = 1,    /* an invalid manifest: nothing was changed */
    MGO_EXIT_USAGE = 2,      /* bad command line, unreadable input, an environment to fix */
    MGO_EXIT_LIBRARY = 3,    /* the library could not be loaded, or failed */
    MGO_EXIT_RETRY = 4,      /* a service unavailable or not converged in time: rerun */
    MGO_EXIT_NOTFOUND = 5,   /* no such cluster or instance */
    MGO_EXIT_VIOLATIONS = 6, /* mgo observe: invariant violations */
};

/* Each error of a validate-shaped result ({"objects": [{"source", "errors", "warnings"}]}) as
 * "SOURCE: path: reason" on standard output; with `warnings`, each warning on standard error. */
void cli_print_findings(const json_t *result, int warnings);

#endif
