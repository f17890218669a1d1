/* Shared by the `mgo` commands; see cli.h. */
#include <stdio.h>

#include "cli.h"

void cli_print_findings(const json_t *result, int warnings)
{
    size_t i, j;
    json_t *o, *e;
    json_array_foreach (json_object_get(result, "objects"), i, o) {
        const char *src = json_string_value(json_object_get(o, "source"));
        if (!src)
            src = "<input>";
        json_array_foreach (json_object_get(o, "errors"), j, e) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *reason = json_string_value(json_object_get(e, "reason"));
            if (path && *path)
                printf("%s: %s: %s\n", src, path, reason ? reason : "");
            else
                printf("%s: %s\n", src, reason ? reason : "");
        }
        if (!warnings)
            continue;
        json_array_foreach (json_object_get(o, "warnings"), j, e) {
            const char *path = json_string_value(json_object_get(e, "path"));
            const char *reason = json_string_value(json_object_get(e, "reason"));
            fprintf(stderr, "%s: %s: warning: %s\n", src, path ? path : "", reason ? reason : "");
        }
    }
}
