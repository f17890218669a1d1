/* Function tables of libraries loaded at run time (see dl.h). */
#include <dlfcn.h>
#include <string.h>

#include "core/dl.h"

int core_dl_one(void *handle, const char *name, void *slot)
{
    void *sym = dlsym(handle, name);
    if (!sym)
        return -1;
    /* POSIX guarantees that a data pointer from dlsym converts to a function pointer; copy the
     * representation, as ISO C has no such conversion. */
    memcpy(slot, &sym, sizeof(sym));
    return 0;
}

int core_dl_fill(void *handle, const struct core_dl_symbol *symbols, size_t n, void *table,
                 const char **ret_missing)
{
    for (size_t i = 0; i < n; i++)
        if (core_dl_one(handle, symbols[i].name, (char *)table + symbols[i].offset)) {
            *ret_missing = symbols[i].name;
            return -1;
        }
    return 0;
}
