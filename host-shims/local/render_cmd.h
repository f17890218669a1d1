/* `mgo render`: what a fresh reconcile would create, for review before applying. */
#ifndef MGO_LOCAL_RENDER_CMD_H
#define MGO_LOCAL_RENDER_CMD_H

#include "loader.h"

/* argv: the arguments after "render". Returns the process exit code. */
int render_command(struct loader_lib *lib, int argc, char **argv);

#endif
