/*
 * util.h — number <-> string conversions with Redis's exact rules, glob
 * matching, and clocks.  Pure functions; no allocation.
 */
#ifndef CAIRN_UTIL_H
#define CAIRN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Write the decimal form of v to p (no NUL); return its length (<= 20). */
size_t u64_to_str(char *p, uint64_t v);
size_t i64_to_str(char *p, int64_t v);

/* Parse a whole string as a signed 64-bit integer, Redis's string2ll rules:
 * optional '-', no '+', no spaces, no leading zeros ("0" itself is fine),
 * overflow rejected.  Returns true and sets *out on success. */
bool str_to_i64(const char *s, size_t n, int64_t *out);

/* Parse a whole string as a long double the way Redis 7 does for
 * INCRBYFLOAT: no leading space, nothing trailing, not NaN, no overflow. */
bool str_to_ldouble(const char *s, size_t n, long double *out);
/* Parse a double as Redis's getDoubleFromObject (used by score-like args). */
bool str_to_double(const char *s, size_t n, double *out);

/* Format like Redis's ld2string(LD_STR_HUMAN): "%.17Lf" with trailing zeros
 * (and a trailing '.') removed.  Returns the length, or 0 when it does not
 * fit in `size` bytes.  `size` must be > 0; the result is NUL-terminated. */
size_t ldouble_to_str(char *buf, size_t size, long double v);

/* Glob-style match (Redis's stringmatchlen): * ? [abc] [^a-z] \x. */
bool glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase);

/* Case-insensitive comparison of a counted string with a C string. */
bool str_eq_nocase(const char *s, size_t n, const char *lit);

/* Wall-clock milliseconds / microseconds since the epoch, and a monotonic
 * millisecond clock for intervals. */
int64_t clock_ms(void);
int64_t clock_us(void);
int64_t clock_mono_ms(void);
int64_t clock_mono_us(void);

#endif
