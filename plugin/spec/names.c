/* The reference's JoinWithConstraints, for names that must match the reference operator's. */
#include <stdio.h>
#include <string.h>

#include "spec/names.h"

uint32_t names_hash(const char *const *parts, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 16777619u;
        h = (h ^ 0) * 16777619u;
    }
    return h;
}

/* Length of the UTF-8 sequence led by `c` (a stray byte counts as one). */
static size_t rune_len(unsigned char c)
{
    return c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
}

void names_join_with(size_t max_len, int first_letter, const char *const *parts, size_t n,
                     char *out, size_t size)
{
    char joined[1024];
    size_t o = 0;

    if (n == 0 || size == 0) {
        if (size)
            out[0] = '\0';
        return;
    }
    /* The transform works on characters: a multi-byte character becomes one '-'. */
    for (size_t i = 0; i < n && o + 2 < sizeof(joined); i++) {
        if (i)
            joined[o++] = '-';
        for (const char *p = parts[i]; *p && o + 2 < sizeof(joined);) {
            char ch = *p;
            if (ch >= 'A' && ch <= 'Z')
                ch = (char)(ch - 'A' + 'a');
            int ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-';
            joined[o++] = ok ? ch : '-';
            size_t step = rune_len((unsigned char)*p);
            for (size_t k = 0; k < step && *p; k++)
                p++;
        }
    }
    joined[o] = '\0';
    char first = joined[0];
    int valid = (first >= 'a' && first <= 'z') || (!first_letter && first >= '0' && first <= '9');
    /* An empty first part also fails the test: then "x" stands before the joining '-'. */
    if (parts[0][0] == '\0')
        valid = 0;
    char hash[9];
    (void)snprintf(hash, sizeof(hash), "%08x", names_hash(parts, n));
    size_t total = (valid ? 0 : 1) + o + 1 + 8;
    if (total <= max_len) {
        (void)snprintf(out, size, "%s%s-%s", valid ? "" : "x", joined, hash);
        return;
    }
    /* Cut the joined text so that prefix + "---" + hash is exactly max_len. */
    size_t keep = max_len - 3 - 8 - (valid ? 0 : 1);
    (void)snprintf(out, size, "%s%.*s---%s", valid ? "" : "x", (int)keep, joined, hash);
}

void names_join(enum names_kind kind, const char *const *parts, size_t n, char *out, size_t size)
{
    static const struct {
        size_t max;
        int first_letter;
    } cons[] = {
        [NAMES_DEFAULT] = {253, 0},
        [NAMES_SERVICE] = {63, 1},
        [NAMES_STATEFULSET] = {52, 1},
        [NAMES_POD] = {60, 1},
    };
    names_join_with(cons[kind].max, cons[kind].first_letter, parts, n, out, size);
}
