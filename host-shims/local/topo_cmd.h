/* The `mgo topo` commands. */
#ifndef MGO_LOCAL_TOPO_CMD_H
#define MGO_LOCAL_TOPO_CMD_H

#include "loader.h"

/* Run `mgo topo ARGS...` (argv[0] is the subcommand); returns the exit code. */
int topo_command(struct loader_lib *lib, int argc, char **argv);

#endif
