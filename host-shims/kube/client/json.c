/*
 * Parsing answers with jansson, and telling a malformed text from a lack of memory.
 *
 * jansson 2.14 does not say when json_loadb failed for want of memory: a failed allocation of a
 * string comes back as "invalid token", one of an object, array or number with no message at
 * all, and its lexer drops bytes it cannot save. So a failure is checked against a validator that
 * allocates nothing and accepts exactly what json_loadb (flags 0) accepts given memory: when the
 * text is valid, only memory can have failed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "kc_internal.h"

/* 2^1024 - 2^970: the least magnitude strtod rounds to infinity (a tie rounds to even, and the
 * mantissa of DBL_MAX is odd), which jansson refuses as "real number overflow". */
static const char real_overflow[] =
    "1797693134862315807937289714053034150799341327100378269361737789804449682927647509466490179"
    "7758720709633028641669288791094655554785194040263065748867150582068190890200070838367627385"
    "4845817711531764475730270069855571366959622842914819860834936475292719074168444365510704342"
    "711559699508093042880177904174497792";
#define REAL_OVERFLOW_EXP10 309 /* real_overflow is 0.1797... x 10^309 */

struct cursor {
    const unsigned char *p, *end;
};

static bool is_digit(unsigned char ch)
{
    return ch >= '0' && ch <= '9';
}

static void skip_space(struct cursor *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

/* The bytes of one UTF-8 sequence at p (RFC 3629: no overlong forms, no surrogates, at most
 * U+10FFFF), 0 when invalid; jansson's utf8_check_first and utf8_check_full. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    size_t n;
    uint32_t v;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        n = 2, v = p[0] & 0x1Fu;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        n = 3, v = p[0] & 0x0Fu;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        n = 4, v = p[0] & 0x07u;
    else
        return 0;
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return 0;
        v = v << 6 | (p[i] & 0x3Fu);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800) ||
        (n == 4 && v < 0x10000))
        return 0;
    return n;
}

bool kc_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;

    while (p < end) {
        size_t n = utf8_sequence(p, end);
        if (n == 0)
            return false;
        p += n;
    }
    return true;
}

/* Four hex digits at p (the caller checked they are there); -1 when one is not hex. */
static long hex4(const unsigned char *p)
{
    long v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char ch = p[i];
        v <<= 4;
        if (is_digit(ch))
            v |= ch - '0';
        else if (ch >= 'a' && ch <= 'f')
            v |= ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
            v |= ch - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* A string at c->p (on its opening quote). jansson refuses control characters, bad escapes,
 * unpaired surrogates and \u0000 (in values without JSON_ALLOW_NUL, and in keys always). */
static bool scan_string(struct cursor *c)
{
    c->p++;
    while (c->p < c->end) {
        unsigned char ch = *c->p;
        size_t n;

        if (ch == '"') {
            c->p++;
            return true;
        }
        if (ch < 0x20)
            return false;
        if (ch != '\\') {
            if ((n = utf8_sequence(c->p, c->end)) == 0)
                return false;
            c->p += n;
            continue;
        }
        if (c->end - c->p < 2)
            return false;
        ch = c->p[1];
        if (ch != 'u') {
            if (!strchr("\"\\/bfnrt", ch) || ch == '\0')
                return false;
            c->p += 2;
            continue;
        }
        long v = c->end - c->p >= 6 ? hex4(c->p + 2) : -1;
        if (v <= 0 || (v >= 0xDC00 && v <= 0xDFFF))
            return false; /* not hex, \u0000, or a low surrogate first */
        c->p += 6;
        if (v >= 0xD800 && v <= 0xDBFF) {
            long low =
                c->end - c->p >= 6 && c->p[0] == '\\' && c->p[1] == 'u' ? hex4(c->p + 2) : -1;
            if (low < 0xDC00 || low > 0xDFFF)
                return false;
            c->p += 6;
        }
    }
    return false; /* no closing quote */
}

/* Whether digits (no leading zeros) exceed the magnitude of json_int_t (long long). */
static bool integer_overflows(const unsigned char *digits, size_t n, bool negative)
{
    const char *limit = negative ? "9223372036854775808" : "9223372036854775807";
    size_t limit_len = strlen(limit);

    if (n != limit_len)
        return n > limit_len;
    return memcmp(digits, limit, n) > 0;
}

/* Whether a real reaches real_overflow in magnitude: its digits are the integer part's (int_n)
 * followed by the fraction's (frac_n), the point between them, times 10^exp10. */
static bool real_overflows(const unsigned char *int_p, size_t int_n, const unsigned char *frac_p,
                           size_t frac_n, int64_t exp10)
{
    size_t n = int_n + frac_n, first, k;
    int64_t e;

#define DIGIT(i) ((i) < int_n ? int_p[(i)] : frac_p[(i)-int_n])
    for (first = 0; first < n && DIGIT(first) == '0'; first++)
        ;
    if (first == n)
        return false; /* zero */
    /* value = 0.d1d2... x 10^e, d1 the first significant digit */
    e = (int64_t)int_n - (int64_t)first + exp10;
    if (e != REAL_OVERFLOW_EXP10)
        return e > REAL_OVERFLOW_EXP10;
    for (k = 0; real_overflow[k]; k++) {
        unsigned char d = first + k < n ? DIGIT(first + k) : '0';
        if (d != (unsigned char)real_overflow[k])
            return d > (unsigned char)real_overflow[k];
    }
    return true; /* the threshold itself (a tie, rounded to infinity) or above it */
#undef DIGIT
}

/* A number at c->p; jansson's lex_scan_number, and strtoll's and strtod's range. */
static bool scan_number(struct cursor *c)
{
    const unsigned char *int_p, *frac_p = NULL;
    size_t int_n, frac_n = 0;
    bool negative = false, is_real = false;
    int64_t exp10 = 0;

    if (*c->p == '-') {
        negative = true;
        c->p++;
    }
    int_p = c->p;
    if (c->p < c->end && *c->p == '0') {
        c->p++;
        if (c->p < c->end && is_digit(*c->p))
            return false; /* a leading zero */
    } else if (c->p < c->end && is_digit(*c->p)) {
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    } else {
        return false;
    }
    int_n = (size_t)(c->p - int_p);
    if (c->p < c->end && *c->p == '.') {
        is_real = true;
        frac_p = ++c->p;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
        frac_n = (size_t)(c->p - frac_p);
        if (frac_n == 0)
            return false;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        bool exp_negative = false;
        const unsigned char *exp_p;

        is_real = true;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
            exp_negative = *c->p++ == '-';
        exp_p = c->p;
        while (c->p < c->end && is_digit(*c->p)) {
            if (exp10 < 1000000000) /* beyond any double either way: stop counting */
                exp10 = exp10 * 10 + (*c->p - '0');
            c->p++;
        }
        if (c->p == exp_p)
            return false;
        if (exp_negative)
            exp10 = -exp10;
    }
    if (!is_real)
        return !integer_overflows(int_p, int_n, negative);
    return !real_overflows(int_p, int_n, frac_p ? frac_p : int_p + int_n, frac_n, exp10);
}

/* true, false or null (jansson reads a whole run of letters as one word). */
static bool scan_word(struct cursor *c)
{
    const unsigned char *start = c->p;
    size_t n;

    while (c->p < c->end && ((*c->p >= 'a' && *c->p <= 'z') || (*c->p >= 'A' && *c->p <= 'Z')))
        c->p++;
    n = (size_t)(c->p - start);
    return (n == 4 && (memcmp(start, "true", 4) == 0 || memcmp(start, "null", 4) == 0)) ||
           (n == 5 && memcmp(start, "false", 5) == 0);
}

static bool scan_scalar(struct cursor *c)
{
    unsigned char ch = *c->p;

    if (ch == '"')
        return scan_string(c);
    if (ch == '-' || is_digit(ch))
        return scan_number(c);
    return scan_word(c);
}

bool kc_json_valid(const char *text, size_t len)
{
    /* one bit per open container: 1 object, 0 array */
    unsigned char is_object[JSON_PARSER_MAX_DEPTH / 8 + 1] = {0};
    struct cursor c = {(const unsigned char *)text, (const unsigned char *)text + len};
    size_t depth = 0; /* open containers */

    skip_space(&c);
    if (c.p == c.end || (*c.p != '{' && *c.p != '['))
        return false; /* flags 0: an object or an array at the top */
    for (;;) {
        /* a value is expected at c.p; jansson counts the top value as depth 1 */
        skip_space(&c);
        if (c.p == c.end || depth + 1 > JSON_PARSER_MAX_DEPTH)
            return false;
        if (*c.p == '{' || *c.p == '[') {
            bool object = *c.p == '{';

            if (object)
                is_object[depth / 8] |= (unsigned char)(1u << depth % 8);
            else
                is_object[depth / 8] &= (unsigned char)~(1u << depth % 8);
            depth++;
            c.p++;
            skip_space(&c);
            if (c.p < c.end && *c.p == (object ? '}' : ']')) {
                c.p++;
                depth--;
            } else if (object) {
                goto key;
            } else {
                continue; /* the array's first value */
            }
        } else if (!scan_scalar(&c)) {
            return false;
        }
        /* after a value: the end of the text, a ',' or the end of containers */
        for (;;) {
            bool object;

            skip_space(&c);
            if (depth == 0)
                return c.p == c.end;
            if (c.p == c.end)
                return false;
            object = is_object[(depth - 1) / 8] & (1u << (depth - 1) % 8);
            if (*c.p == ',') {
                c.p++;
                if (object)
                    goto key;
                break; /* the next value of the array */
            }
            if (*c.p != (object ? '}' : ']'))
                return false;
            c.p++;
            depth--;
        }
        continue;
    key:
        skip_space(&c);
        if (c.p == c.end || *c.p != '"' || !scan_string(&c))
            return false;
        skip_space(&c);
        if (c.p == c.end || *c.p != ':')
            return false;
        c.p++;
    }
}

int kc_json_parse(const char *text, size_t len, json_t **ret, json_error_t *jerr)
{
    json_t *v;

    memset(jerr, 0, sizeof(*jerr));
    v = json_loadb(text, len, 0, jerr);
    if (v) {
        *ret = v;
        return 0;
    }
    /* no message, the out-of-memory code (later versions), or a text jansson accepts: memory */
    if (jerr->text[0] == '\0' || json_error_code(jerr) == json_error_out_of_memory ||
        kc_json_valid(text, len))
        return -ENOMEM;
    return -EPROTO;
}
