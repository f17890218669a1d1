/* Kubernetes quantities: parse and compare. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "spec/quantity.h"

struct suffix {
    const char *text;
    long double factor;
};

static const struct suffix suffixes[] = {
    {"Ki", 1024.0L},
    {"Mi", 1048576.0L},
    {"Gi", 1073741824.0L},
    {"Ti", 1099511627776.0L},
    {"Pi", 1125899906842624.0L},
    {"Ei", 1152921504606846976.0L},
    {"n", 1e-9L},
    {"u", 1e-6L},
    {"m", 1e-3L},
    {"k", 1e3L},
    {"M", 1e6L},
    {"G", 1e9L},
    {"T", 1e12L},
    {"P", 1e15L},
    {"E", 1e18L},
};

static size_t digits(const char *s)
{
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9')
        n++;
    return n;
}

/* The number part: [+-]? ( [0-9]+ (\.[0-9]*)? | \.[0-9]+ ). Returns its length, 0 if none. */
static size_t number_prefix(const char *s)
{
    size_t i = (*s == '+' || *s == '-') ? 1 : 0;
    size_t whole = digits(s + i);
    i += whole;
    if (s[i] == '.') {
        size_t frac = digits(s + i + 1);
        if (!whole && !frac)
            return 0;
        i += 1 + frac;
    } else if (!whole) {
        return 0;
    }
    return i;
}

static int parse_text(const char *s, long double *ret)
{
    size_t n = number_prefix(s);
    long double factor = 1.0L;
    char num[64];

    if (n == 0 || n >= sizeof(num))
        return -EINVAL;
    const char *rest = s + n;
    if (*rest == 'e' || *rest == 'E') {
        const char *e = rest + 1;
        size_t k = (*e == '+' || *e == '-') ? 1 : 0;
        size_t d = digits(e + k);
        if (d == 0 || e[k + d] != '\0' || d > 4)
            return -EINVAL;
        char *end = NULL;
        long exp10 = strtol(e, &end, 10);
        factor = powl(10.0L, (long double)exp10);
    } else if (*rest) {
        size_t i;
        for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++)
            if (strcmp(rest, suffixes[i].text) == 0)
                break;
        if (i == sizeof(suffixes) / sizeof(suffixes[0]))
            return -EINVAL;
        factor = suffixes[i].factor;
    }
    memcpy(num, s, n);
    num[n] = '\0';
    errno = 0;
    char *end = NULL;
    long double v = strtold(num, &end);
    if (errno != 0 || !end || *end != '\0')
        return -EINVAL;
    *ret = v * factor;
    return isfinite(*ret) ? 0 : -EINVAL;
}

int quantity_parse(const json_t *value, long double *ret)
{
    if (json_is_integer(value)) {
        *ret = (long double)json_integer_value(value);
        return 0;
    }
    if (json_is_real(value)) {
        *ret = (long double)json_real_value(value);
        return 0;
    }
    if (!json_is_string(value))
        return -EINVAL;
    return parse_text(json_string_value(value), ret);
}

int quantity_compare(long double a, long double b)
{
    long double scale = fabsl(a) > fabsl(b) ? fabsl(a) : fabsl(b);
    if (fabsl(a - b) <= scale * 1e-12L)
        return 0;
    return a < b ? -1 : 1;
}
