/*
 * Object names by the reference operator's scheme (pkg/util/name): parts lower-cased, characters
 * outside [a-z0-9-] replaced by '-', joined with '-', and "-<hash>" appended (FNV-1a 32 over the
 * original parts, each followed by a NUL byte, as 8 hex digits); a name that would exceed the
 * limit is cut so that "<prefix>---<hash>" is exactly the limit. Module prefix names_.
 */
#ifndef MGO_SPEC_NAMES_H
#define MGO_SPEC_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* The reference's constraint sets: maximum length and what the first character may be. */
enum names_kind {
    NAMES_DEFAULT,     /* 253, first character a lower-case letter or digit */
    NAMES_SERVICE,     /* 63, first character a lower-case letter */
    NAMES_STATEFULSET, /* 52, first character a lower-case letter */
    NAMES_POD,         /* 60, first character a lower-case letter (room for "-<index>") */
};

/* FNV-1a 32 over the parts, each followed by a NUL byte. */
uint32_t names_hash(const char *const *parts, size_t n);

/* Join `n` parts under `kind`'s constraints into out (size at least 254). */
void names_join(enum names_kind kind, const char *const *parts, size_t n, char *out, size_t size);

/* The same with explicit constraints (for tests): max_len >= 12; first_letter: the first
 * character must be a letter (else a letter or a digit). */
void names_join_with(size_t max_len, int first_letter, const char *const *parts, size_t n,
                     char *out, size_t size);

#endif
