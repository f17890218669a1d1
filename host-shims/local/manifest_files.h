/* Reading manifest files and template directories for the command-line host. */
#ifndef MGO_LOCAL_MANIFEST_FILES_H
#define MGO_LOCAL_MANIFEST_FILES_H

#include <jansson.h>

/* Append {"source": path, "text": contents} for `path` ("-" reads standard input) to `list`.
 * Returns 0, or -1 with a message in err. */
int manifest_add_file(json_t *list, const char *path, char *err, size_t err_size);

/* Append every *.yaml, *.yml and *.json file of `dir` (sorted by name, not recursive). */
int manifest_add_dir(json_t *list, const char *dir, char *err, size_t err_size);

#endif
