/* Drain decisions over a snapshot of the shard; see select.h for the contracts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "drain/select.h"

static void set_why(char *why, size_t why_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_why(char *why, size_t why_size, const char *fmt, ...)
{
    va_list ap;

    if (!why || why_size == 0)
        return;
    va_start(ap, fmt);
    /* A reason cut short is still a reason; truncation is acceptable here. */
    (void)vsnprintf(why, why_size, fmt, ap);
    va_end(ap);
}

static const char *cell_of(const struct drain_node *node)
{
    return node->cell ? node->cell : "";
}

static const char *name_of(const struct drain_node *node)
{
    return node->name ? node->name : "";
}

static int policy_is_known(enum drain_policy p)
{
    return p == DRAIN_AT_LEAST_2 || p == DRAIN_MULTI_CELL_AT_LEAST_2;
}

static int is_standby(const struct drain_node *nodes, size_t primary, size_t i)
{
    return i != primary && !nodes[i].primary;
}

static int can_acknowledge(const struct drain_node *node)
{
    return node->streaming && node->ready && !node->draining;
}

/* Does standby i count toward policy p for the primary at `primary`? */
static int counts_toward(const struct drain_node *nodes, enum drain_policy p, size_t primary,
                         size_t i)
{
    if (p == DRAIN_MULTI_CELL_AT_LEAST_2)
        return strcmp(cell_of(&nodes[i]), cell_of(&nodes[primary])) != 0;
    return 1;
}

int drain_policy_parse(const char *name, enum drain_policy *ret)
{
    if (!name || !ret)
        return -EINVAL;
    if (strcmp(name, "AT_LEAST_2") == 0)
        *ret = DRAIN_AT_LEAST_2;
    else if (strcmp(name, "MULTI_CELL_AT_LEAST_2") == 0)
        *ret = DRAIN_MULTI_CELL_AT_LEAST_2;
    else
        return -EINVAL;
    return 0;
}

int drain_policy_satisfied(const struct drain_node *nodes, size_t n, enum drain_policy p,
                           size_t primary, size_t exclude, char *why, size_t why_size)
{
    const char *other = exclude == SIZE_MAX ? "" : "other ";

    if (!nodes || primary >= n || !policy_is_known(p)) {
        set_why(why, why_size, "invalid arguments: no nodes, primary out of range or bad policy");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (i == exclude || !is_standby(nodes, primary, i) || !can_acknowledge(&nodes[i]))
            continue;
        if (counts_toward(nodes, p, primary, i))
            return 1;
    }
    if (p == DRAIN_MULTI_CELL_AT_LEAST_2)
        set_why(why, why_size, "no %sstreaming standby outside cell %s", other,
                cell_of(&nodes[primary]));
    else
        set_why(why, why_size, "no %sstreaming standby", other);
    return 0;
}

int drain_standby_may_leave(const struct drain_node *nodes, size_t n, enum drain_policy p,
                            size_t victim, char *why, size_t why_size)
{
    size_t primary = SIZE_MAX;

    if (!nodes || victim >= n || !policy_is_known(p)) {
        set_why(why, why_size, "invalid arguments: no nodes, victim out of range or bad policy");
        return -EINVAL;
    }
    if (nodes[victim].primary) {
        set_why(why, why_size, "%s is the primary: it hands over by switchover first",
                name_of(&nodes[victim]));
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!nodes[i].primary)
            continue;
        if (primary != SIZE_MAX) {
            set_why(why, why_size, "two primaries: %s and %s", name_of(&nodes[primary]),
                    name_of(&nodes[i]));
            return 0;
        }
        primary = i;
    }
    if (primary == SIZE_MAX) {
        set_why(why, why_size, "the shard has no primary");
        return 0;
    }
    return drain_policy_satisfied(nodes, n, p, primary, victim, why, why_size);
}

/* Is a more advanced than b: received LSN, replayed LSN, lower index, lower name? */
static int ranks_before(const struct drain_node *a, const struct drain_node *b)
{
    if (a->received_lsn != b->received_lsn)
        return a->received_lsn > b->received_lsn;
    if (a->replayed_lsn != b->replayed_lsn)
        return a->replayed_lsn > b->replayed_lsn;
    if (a->index != b->index)
        return a->index < b->index;
    return strcmp(name_of(a), name_of(b)) < 0;
}

int drain_pick_candidate(const struct drain_node *nodes, size_t n, enum drain_policy p,
                         size_t primary, size_t *ret, char *why, size_t why_size)
{
    size_t best = SIZE_MAX, best_refused = SIZE_MAX;
    char refused_why[160] = "";

    if (!nodes || primary >= n || !ret || !policy_is_known(p)) {
        set_why(why, why_size, "invalid arguments: no nodes, primary out of range or bad policy");
        return -EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (!is_standby(nodes, primary, i) || !can_acknowledge(&nodes[i]) || nodes[i].unfit)
            continue;
        /* Promoting i makes it the primary; the old primary no longer counts. */
        if (drain_policy_satisfied(nodes, n, p, i, primary, NULL, 0) != 1) {
            if (best_refused == SIZE_MAX || ranks_before(&nodes[i], &nodes[best_refused]))
                best_refused = i;
            continue;
        }
        if (best == SIZE_MAX || ranks_before(&nodes[i], &nodes[best]))
            best = i;
    }
    if (best != SIZE_MAX) {
        *ret = best;
        return 0;
    }
    if (best_refused == SIZE_MAX) {
        set_why(why, why_size, "no ready, streaming standby of %s that is not draining",
                name_of(&nodes[primary]));
        return -ENOENT;
    }
    (void)drain_policy_satisfied(nodes, n, p, best_refused, primary, refused_why,
                                 sizeof(refused_why));
    set_why(why, why_size, "promoting %s would leave %s", name_of(&nodes[best_refused]),
            refused_why);
    return -ENOENT;
}

/* Append c at position *len when it fits in cap (out may be NULL, to measure only). */
static void put_char(char *out, size_t cap, size_t *len, char c)
{
    if (out && *len < cap)
        out[*len] = c;
    (*len)++;
}

static void put_str(char *out, size_t cap, size_t *len, const char *s)
{
    for (; *s; s++)
        put_char(out, cap, len, *s);
}

/* A PostgreSQL quoted identifier: in double quotes, each embedded '"' doubled. */
static void put_ident(char *out, size_t cap, size_t *len, const char *s)
{
    put_char(out, cap, len, '"');
    for (; *s; s++) {
        if (*s == '"')
            put_char(out, cap, len, '"');
        put_char(out, cap, len, *s);
    }
    put_char(out, cap, len, '"');
}

/* Does standby i belong in the primary's synchronous_standby_names? */
static int is_listed(const struct drain_node *nodes, enum drain_policy p, size_t primary,
                     size_t exclude, size_t i)
{
    return i != exclude && is_standby(nodes, primary, i) && counts_toward(nodes, p, primary, i);
}

/* Write the setting into out when out is not NULL; return its length without the NUL. */
static size_t sync_names_emit(const struct drain_node *nodes, size_t n, enum drain_policy p,
                              size_t primary, size_t exclude, char *out, size_t cap)
{
    size_t len = 0, listed = 0;

    for (size_t i = 0; i < n; i++) {
        if (!is_listed(nodes, p, primary, exclude, i))
            continue;
        put_str(out, cap, &len, listed == 0 ? "ANY 1 (" : ", ");
        put_ident(out, cap, &len, nodes[i].name);
        listed++;
    }
    if (listed > 0)
        put_char(out, cap, &len, ')');
    return len;
}

int drain_sync_names(const struct drain_node *nodes, size_t n, enum drain_policy p, size_t primary,
                     size_t exclude, char *out, size_t out_size)
{
    size_t len;

    if (!nodes || !out || primary >= n || !policy_is_known(p))
        return -EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (!is_listed(nodes, p, primary, exclude, i))
            continue;
        if (!nodes[i].name || nodes[i].name[0] == '\0')
            return -EINVAL;
    }
    /* Measure first, so that out is untouched when it is too small. */
    len = sync_names_emit(nodes, n, p, primary, exclude, NULL, 0);
    if (len >= out_size)
        return -ERANGE;
    (void)sync_names_emit(nodes, n, p, primary, exclude, out, out_size);
    out[len] = '\0';
    return 0;
}

static int ascii_lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch;
}

static int same_name_nocase(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++)
        if (ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return i == alen && b[i] == '\0';
}

int drain_names_mention(const char *setting, const char *name)
{
    char ident[256];
    if (!setting || !name)
        return 1;
    for (const char *s = setting; *s;) {
        unsigned char ch = (unsigned char)*s;
        if (ch == ' ' || ch == '\t' || ch == '\n' || ch == ',' || ch == '(' || ch == ')') {
            s++;
        } else if (ch == '*') {
            return 1;
        } else if (ch == '"') {
            size_t n = 0;
            for (s++;; s++) {
                if (!*s)
                    return 1; /* unterminated: unreadable */
                if (*s == '"' && s[1] != '"')
                    break;
                if (*s == '"')
                    s++;
                if (n + 1 >= sizeof(ident))
                    return 1;
                ident[n++] = *s;
            }
            s++;
            /* PostgreSQL reads a quoted "*" as the wildcard too */
            if ((n == 1 && ident[0] == '*') || same_name_nocase(ident, n, name))
                return 1;
        } else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_' ||
                   (ch >= '0' && ch <= '9') || ch >= 0x80) {
            const char *start = s;
            while (*s && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
                          (*s >= '0' && *s <= '9') || *s == '$' || *s == '-' ||
                          (unsigned char)*s >= 0x80))
                s++;
            if (same_name_nocase(start, (size_t)(s - start), name))
                return 1;
        } else {
            return 1; /* a character PostgreSQL's grammar would not take here: unreadable */
        }
    }
    return 0;
}

/* One token of synchronous_standby_names: a name (bare or quoted), a number, or punctuation. */
struct sync_token {
    char kind; /* 'n' name, '#' number, '*', '(', ')', ',', 0 at the end, '?' unreadable */
    long num;
    const char *word; /* bare words: ANY and FIRST are told apart by the caller */
    size_t len;
};

static const char *sync_token_next(const char *s, struct sync_token *t)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    memset(t, 0, sizeof(*t));
    if (!*s)
        return s;
    if (strchr("*(),", *s)) {
        t->kind = *s;
        return s + 1;
    }
    if (*s == '"') {
        if (s[1] == '*' && s[2] == '"' && s[3] != '"') {
            t->kind = '*'; /* a quoted "*" is the wildcard, as PostgreSQL reads it */
            return s + 3;
        }
        for (s++;; s++) {
            if (!*s) {
                t->kind = '?';
                return s;
            }
            if (*s == '"' && s[1] != '"')
                break;
            if (*s == '"')
                s++;
        }
        t->kind = 'n';
        return s + 1;
    }
    const char *start = s;
    while (*s && ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' ||
                  (*s >= '0' && *s <= '9') || *s == '$' || *s == '-' || (unsigned char)*s >= 0x80))
        s++;
    if (s == start) {
        t->kind = '?';
        return s;
    }
    t->word = start;
    t->len = (size_t)(s - start);
    t->kind = strspn(start, "0123456789") >= t->len ? '#' : 'n';
    if (t->kind == '#')
        t->num = t->len > 6 ? 1000000 : strtol(start, NULL, 10);
    return s;
}

static int sync_keyword(const struct sync_token *t)
{
    return t->kind == 'n' && t->word &&
           ((t->len == 3 && strncasecmp(t->word, "any", 3) == 0) ||
            (t->len == 5 && strncasecmp(t->word, "first", 5) == 0));
}

int drain_names_shape(const char *setting, long *ret_num, size_t *ret_names, int *ret_star)
{
    struct sync_token t, u;
    const char *s = sync_token_next(setting ? setting : "", &t);
    long num = 1;
    size_t names = 0;
    int star = 0, paren = 0;
    if (t.kind == 0) {
        *ret_num = 0;
        *ret_names = 0;
        *ret_star = 0;
        return 0;
    }
    if (sync_keyword(&t)) {
        s = sync_token_next(s, &t);
        if (t.kind != '#')
            return -EINVAL;
        num = t.num;
        s = sync_token_next(s, &t);
        if (t.kind != '(')
            return -EINVAL;
        paren = 1;
        s = sync_token_next(s, &t);
    } else if (t.kind == '#') {
        const char *after = sync_token_next(s, &u);
        if (u.kind == '(') {
            num = t.num;
            paren = 1;
            s = sync_token_next(after, &t);
        }
    }
    for (;;) {
        if (t.kind != 'n' && t.kind != '#' && t.kind != '*')
            return -EINVAL;
        star |= t.kind == '*';
        names++;
        s = sync_token_next(s, &t);
        if (t.kind == ',') {
            s = sync_token_next(s, &t);
            continue;
        }
        if (paren && t.kind == ')') {
            s = sync_token_next(s, &t);
            paren = 0;
        }
        if (t.kind != 0 || paren)
            return -EINVAL;
        break;
    }
    *ret_num = num;
    *ret_names = names;
    *ret_star = star;
    return 0;
}
