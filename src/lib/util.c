#include "lib/util.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

size_t u64_to_str(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

size_t i64_to_str(char *p, int64_t v)
{
    if (v < 0) {
        p[0] = '-';
        return 1 + u64_to_str(p + 1, (uint64_t)0 - (uint64_t)v);
    }
    return u64_to_str(p, (uint64_t)v);
}

bool str_to_i64(const char *s, size_t n, int64_t *out)
{
    if (n == 0 || n > 20) return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    bool neg = false;
    size_t i = 0;
    if (s[0] == '-') {
        neg = true;
        if (++i == n) return false;
    }
    if (s[i] < '1' || s[i] > '9') return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = (int64_t)(0 - v);
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

bool str_to_ldouble(const char *s, size_t n, long double *out)
{
    char buf[5 * 1024 + 1];
    if (n == 0 || n >= sizeof(buf)) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end;
    long double v = strtold(buf, &end);
    if (isspace((unsigned char)buf[0]) || (size_t)(end - buf) != n ||
        (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return false;
    *out = v;
    return true;
}

bool str_to_double(const char *s, size_t n, double *out)
{
    char buf[5 * 1024 + 1];
    if (n == 0 || n >= sizeof(buf)) return false;
    memcpy(buf, s, n);
    buf[n] = '\0';
    errno = 0;
    char *end;
    double v = strtod(buf, &end);
    if (isspace((unsigned char)buf[0]) || (size_t)(end - buf) != n ||
        (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return false;
    *out = v;
    return true;
}

size_t ldouble_to_str(char *buf, size_t size, long double v)
{
    if (isinf(v) || isnan(v)) return 0;
    int l = snprintf(buf, size, "%.17Lf", v);
    if (l < 0 || (size_t)l >= size) return 0;
    if (strchr(buf, '.')) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return (size_t)l;
}

static int fold(int c, bool nocase) { return nocase ? tolower(c) : c; }

/* Recursion depth is bounded by the number of '*' in the pattern, which is
 * bounded by the request size; a guard keeps hostile patterns from taking
 * exponential time (as Redis 7 does with its nesting limit). */
static bool match(const char *p, size_t pl, const char *s, size_t sl, bool nc, int depth,
                  bool *skip_longer)
{
    if (depth > 1000) return false;
    while (pl && sl) {
        switch (*p) {
        case '*':
            while (pl > 1 && p[1] == '*') {
                p++;
                pl--;
            }
            if (pl == 1) return true;
            while (sl) {
                if (match(p + 1, pl - 1, s, sl, nc, depth + 1, skip_longer)) return true;
                if (*skip_longer) return false;
                s++;
                sl--;
            }
            *skip_longer = true;
            return false;
        case '?':
            s++;
            sl--;
            break;
        case '[': {
            p++;
            pl--;
            bool neg = pl && *p == '^';
            if (neg) {
                p++;
                pl--;
            }
            bool hit = false;
            while (pl) {
                if (*p == '\\' && pl >= 2) {
                    p++;
                    pl--;
                    if (*p == *s) hit = true;
                } else if (*p == ']') {
                    break;
                } else if (pl >= 3 && p[1] == '-') {
                    int a = fold((unsigned char)p[0], nc), b = fold((unsigned char)p[2], nc);
                    int c = fold((unsigned char)*s, nc);
                    if (a > b) {
                        int t = a;
                        a = b;
                        b = t;
                    }
                    if (c >= a && c <= b) hit = true;
                    p += 2;
                    pl -= 2;
                } else if (fold((unsigned char)*p, nc) == fold((unsigned char)*s, nc)) {
                    hit = true;
                }
                p++;
                pl--;
            }
            if (pl == 0) { /* unterminated: treat the end as ']' */
                p--;
                pl++;
            }
            if (neg) hit = !hit;
            if (!hit) return false;
            s++;
            sl--;
            break;
        }
        case '\\':
            if (pl >= 2) {
                p++;
                pl--;
            }
            /* fall through */
        default:
            if (fold((unsigned char)*p, nc) != fold((unsigned char)*s, nc)) return false;
            s++;
            sl--;
            break;
        }
        p++;
        pl--;
        if (sl == 0) {
            while (pl && *p == '*') {
                p++;
                pl--;
            }
            break;
        }
    }
    /* As Redis: an empty string matches no pattern, not even "*" (callers
     * short-cut a lone "*" before matching). */
    return pl == 0 && sl == 0;
}

bool glob_match(const char *pat, size_t plen, const char *s, size_t slen, bool nocase)
{
    bool skip = false;
    return match(pat, plen, s, slen, nocase, 0, &skip);
}

bool str_eq_nocase(const char *s, size_t n, const char *lit)
{
    size_t l = strlen(lit);
    return l == n && strncasecmp(s, lit, n) == 0;
}

int64_t clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t clock_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
