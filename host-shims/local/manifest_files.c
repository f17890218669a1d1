/* File and directory input for the command-line host. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest_files.h"

#define MAX_MANIFEST_BYTES (64u * 1024u * 1024u)

static int read_stream(FILE *f, char **ret, size_t *ret_len)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_MANIFEST_BYTES) {
                free(buf);
                return -EFBIG;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                return -ENOMEM;
            }
            buf = nb;
            cap *= 2;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                free(buf);
                return -EIO;
            }
            break;
        }
    }
    *ret = buf;
    *ret_len = len;
    return 0;
}

int manifest_add_file(json_t *list, const char *path, char *err, size_t err_size)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *text = NULL;
    size_t len = 0;
    int rc;

    if (!f) {
        (void)snprintf(err, err_size, "%s: %s", path, strerror(errno));
        return -1;
    }
    rc = read_stream(f, &text, &len);
    if (f != stdin)
        (void)fclose(f); /* read-only: nothing to flush */
    if (rc) {
        (void)snprintf(err, err_size, "%s: %s", path,
                       rc == -EFBIG ? "file larger than 64 MiB" : strerror(-rc));
        return -1;
    }
    json_t *t = json_stringn(text, len);
    free(text);
    if (!t) {
        (void)snprintf(err, err_size, "%s: not valid UTF-8 text", path);
        return -1;
    }
    json_t *entry =
        json_pack("{s:s, s:o}", "source", strcmp(path, "-") == 0 ? "<stdin>" : path, "text", t);
    if (!entry || json_array_append_new(list, entry)) {
        (void)snprintf(err, err_size, "%s: out of memory", path);
        return -1;
    }
    return 0;
}

static int has_manifest_suffix(const char *name)
{
    static const char *const suffixes[] = {".yaml", ".yml", ".json", NULL};
    size_t n = strlen(name);
    for (const char *const *s = suffixes; *s; s++) {
        size_t k = strlen(*s);
        if (n > k && strcmp(name + n - k, *s) == 0)
            return 1;
    }
    return 0;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int manifest_add_dir(json_t *list, const char *dir, char *err, size_t err_size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;

    if (!d) {
        (void)snprintf(err, err_size, "%s: %s", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !has_manifest_suffix(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                rc = -1;
                break;
            }
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (!names[n]) {
            rc = -1;
            break;
        }
        n++;
    }
    (void)closedir(d);
    if (rc)
        (void)snprintf(err, err_size, "%s: out of memory", dir);
    if (n > 1)
        qsort(names, n, sizeof(*names), name_cmp);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char path[4096];
        int len = snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (len < 0 || (size_t)len >= sizeof(path)) {
            (void)snprintf(err, err_size, "%s/%s: path too long", dir, names[i]);
            rc = -1;
            break;
        }
        rc = manifest_add_file(list, path, err, err_size);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
