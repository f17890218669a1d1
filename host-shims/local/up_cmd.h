/* The local-cluster commands of `mgo` (docs/local.md). */
#ifndef MGO_LOCAL_UP_CMD_H
#define MGO_LOCAL_UP_CMD_H

#include "loader.h"

/* Run `mgo CMD ARGS...` for CMD up, apply, status, observe, scale, drain, logs or down: the
 * exit code; -1 for another command. */
int up_command(struct loader_lib *lib, const char *cmd, int argc, char **argv);

#endif
