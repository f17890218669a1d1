/* Function tables of libraries loaded at run time (libcurl, libpq). Module prefix core_dl_. */
#ifndef MGO_CORE_DL_H
#define MGO_CORE_DL_H

#include <stddef.h>

struct core_dl_symbol {
    const char *name; /* the exported function */
    size_t offset;    /* where its pointer goes in the caller's table */
};

/* Resolve every symbol of `handle` (from dlopen) into `table`. 0, or -1 with *ret_missing set
 * to the first name that was not found (dlerror() then says why). */
int core_dl_fill(void *handle, const struct core_dl_symbol *symbols, size_t n, void *table,
                 const char **ret_missing);

/* One symbol as a function pointer stored at `slot` (a pointer to a function pointer). */
int core_dl_one(void *handle, const char *name, void *slot);

#endif
