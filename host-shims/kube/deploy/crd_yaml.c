/* Block-style YAML output of a jansson value (see crd_gen.h). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "crd_gen.h"

#define STEP 2 /* spaces per nesting level */

/* Plain scalars YAML 1.1 readers (sigs.k8s.io/yaml, PyYAML) take for booleans or null. */
static const char *const reserved_words[] = {"y",  "n",   "yes",   "no",   "true",
                                             "on", "off", "false", "null", NULL};

static int lower_equal(const char *s, size_t len, const char *word)
{
    if (strlen(word) != len)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != word[i])
            return 0;
    }
    return 1;
}

/* A string that every YAML reader reads back as exactly this string when written plain: a
 * letter or '/' first, then letters, digits and "_./-", and no boolean or null word. */
static int plain_safe(const char *s, size_t len)
{
    if (len == 0)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '/'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '/' || c == '-'))
            return 0;
    }
    for (const char *const *w = reserved_words; *w; w++)
        if (lower_equal(s, len, *w))
            return 0;
    return 1;
}

/* A double-quoted YAML scalar; UTF-8 passes through, control characters are escaped. */
static int write_quoted(FILE *out, const char *s, size_t len)
{
    if (fputc('"', out) == EOF)
        return -EIO;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int rc;
        if (c == '"' || c == '\\')
            rc = fprintf(out, "\\%c", c);
        else if (c == '\n')
            rc = fputs("\\n", out);
        else if (c == '\t')
            rc = fputs("\\t", out);
        else if (c < 0x20 || c == 0x7f)
            rc = fprintf(out, "\\x%02x", c);
        else
            rc = fputc(c, out);
        if (rc < 0)
            return -EIO;
    }
    return fputc('"', out) == EOF ? -EIO : 0;
}

static int write_string(FILE *out, const char *s, size_t len)
{
    if (plain_safe(s, len))
        return fwrite(s, 1, len, out) == len ? 0 : -EIO;
    return write_quoted(out, s, len);
}

/* A scalar, or an empty object or array in flow style. */
static int write_scalar(FILE *out, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_STRING:
        return write_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return fprintf(out, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0 ? -EIO : 0;
    case JSON_REAL:
        if (!isfinite(json_real_value(v)))
            return -EINVAL;
        return fprintf(out, "%.17g", json_real_value(v)) < 0 ? -EIO : 0;
    case JSON_TRUE:
        return fputs("true", out) < 0 ? -EIO : 0;
    case JSON_FALSE:
        return fputs("false", out) < 0 ? -EIO : 0;
    case JSON_NULL:
        return fputs("null", out) < 0 ? -EIO : 0;
    case JSON_OBJECT:
        return fputs("{}", out) < 0 ? -EIO : 0;
    case JSON_ARRAY:
        return fputs("[]", out) < 0 ? -EIO : 0;
    }
    return -EINVAL;
}

static int is_block(const json_t *v)
{
    return (json_is_object(v) && json_object_size(v) > 0) ||
           (json_is_array(v) && json_array_size(v) > 0);
}

static int write_indent(FILE *out, int indent)
{
    return fprintf(out, "%*s", indent, "") < 0 ? -EIO : 0;
}

static int write_mapping(FILE *out, const json_t *obj, int indent, int first_inline);
static int write_sequence(FILE *out, const json_t *arr, int indent);

/* What follows "key:" — a scalar on the same line, or a block on the next lines. */
static int write_after_key(FILE *out, const json_t *v, int indent)
{
    int rc;
    if (!is_block(v)) {
        if (fputc(' ', out) == EOF)
            return -EIO;
        rc = write_scalar(out, v);
        return rc ? rc : (fputc('\n', out) == EOF ? -EIO : 0);
    }
    if (fputc('\n', out) == EOF)
        return -EIO;
    return json_is_object(v) ? write_mapping(out, v, indent + STEP, 0)
                             : write_sequence(out, v, indent + STEP);
}

static int write_mapping(FILE *out, const json_t *obj, int indent, int first_inline)
{
    const char *key;
    const json_t *v;
    int first = 1, rc = 0;

    json_object_foreach ((json_t *)obj, key, v) {
        if (!(first && first_inline))
            rc = write_indent(out, indent);
        first = 0;
        if (!rc)
            rc = write_string(out, key, strlen(key));
        if (!rc)
            rc = fputc(':', out) == EOF ? -EIO : 0;
        if (!rc)
            rc = write_after_key(out, v, indent);
        if (rc)
            return rc;
    }
    return 0;
}

static int write_sequence(FILE *out, const json_t *arr, int indent)
{
    size_t i;
    const json_t *v;
    int rc = 0;

    json_array_foreach (arr, i, v) {
        rc = write_indent(out, indent);
        if (!rc)
            rc = fputs("- ", out) < 0 ? -EIO : 0;
        if (rc)
            return rc;
        if (json_is_object(v) && is_block(v)) {
            rc = write_mapping(out, v, indent + STEP, 1);
        } else if (is_block(v)) {
            rc = fputc('\n', out) == EOF ? -EIO : write_sequence(out, v, indent + STEP);
        } else {
            rc = write_scalar(out, v);
            if (!rc)
                rc = fputc('\n', out) == EOF ? -EIO : 0;
        }
        if (rc)
            return rc;
    }
    return 0;
}

int crdgen_yaml_write(FILE *out, const json_t *doc)
{
    if (json_is_object(doc) && is_block(doc))
        return write_mapping(out, doc, 0, 0);
    if (json_is_array(doc) && is_block(doc))
        return write_sequence(out, doc, 0);
    int rc = write_scalar(out, doc);
    return rc ? rc : (fputc('\n', out) == EOF ? -EIO : 0);
}
