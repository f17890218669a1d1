/* Kubernetes resource quantities ("500m", "1Gi", "2e3"), parsed for comparison. */
#ifndef MGO_SPEC_QUANTITY_H
#define MGO_SPEC_QUANTITY_H

#include <jansson.h>

/*
 * Parse a quantity as the API server's grammar defines it: an optional sign, a decimal number,
 * then a binary suffix (Ki Mi Gi Ti Pi Ei), a decimal suffix (n u m k M G T P E) or a decimal
 * exponent (e3, E-2). Returns 0 and stores the value in base units (bytes, cores) in *ret, or
 * -EINVAL for text that is not a quantity. Integers (JSON numbers) are accepted as they are.
 */
int quantity_parse(const json_t *value, long double *ret);

/* Compare two parsed quantities: negative, zero or positive like strcmp. Values within one part
 * in 10^12 of each other compare equal (the same amount spelled two ways: "1Gi" and "1024Mi"). */
int quantity_compare(long double a, long double b);

#endif
