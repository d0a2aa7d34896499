/*
 * config.c — table-driven settings (see config.h for the contract).
 *
 * Flow of one value, whatever its source:
 *
 *     default text ─┐
 *     file line ────┼─> lookup (name or alias) ─> set_def(): immutable? ─> parse_value()
 *     --flag ───────┤                                                 │  (type, bounds)
 *     CONFIG SET ───┘                                                 v
 *                                                          store_value() into obj
 *
 * parse_value() never touches the object, so a rejected value leaves the old
 * one in place; store_value() cannot fail.
 */
#include "lib/config.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mem.h"
#include "lib/util.h"

/* Room for one message from parse_value(); the longest is an enum's list. */
#define MSG_MAX 512

typedef union cfg_val {
    bool b;
    int64_t i;
    int e;
    char *s; /* owned once parsed */
} cfg_val;

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static void *field(void *obj, const cfg_def *d) { return (char *)obj + d->offset; }
static const void *cfield(const void *obj, const cfg_def *d)
{
    return (const char *)obj + d->offset;
}

static const cfg_def *lookup_n(const cfg_def *tab, const char *name, size_t n)
{
    for (const cfg_def *d = tab; d->name; d++) {
        if (str_eq_nocase(name, n, d->name)) return d;
        if (d->alias && str_eq_nocase(name, n, d->alias)) return d;
    }
    return NULL;
}

/* Redis's memtoull(), but stricter: at least one digit, and the result must
 * fit in int64_t.  Returns false on anything else. */
static bool parse_bytes(const char *s, int64_t *out)
{
    static const struct {
        const char *unit;
        int64_t mul;
    } units[] = {
        {"", 1},
        {"b", 1},
        {"k", 1000},
        {"kb", 1024},
        {"m", 1000 * 1000},
        {"mb", 1024 * 1024},
        {"g", 1000LL * 1000 * 1000},
        {"gb", 1024LL * 1024 * 1024},
    };
    const char *u = s;
    while (*u >= '0' && *u <= '9') u++;
    if (u == s) return false;

    int64_t mul = 0;
    size_t ulen = strlen(u);
    for (size_t k = 0; k < sizeof(units) / sizeof(units[0]); k++)
        if (str_eq_nocase(u, ulen, units[k].unit)) mul = units[k].mul;
    if (mul == 0) return false;

    int64_t v = 0;
    for (const char *p = s; p < u; p++) {
        int digit = *p - '0';
        if (v > (INT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    if (v > INT64_MAX / mul) return false;
    *out = v * mul;
    return true;
}

static void enum_message(const cfg_def *d, char *msg, size_t msglen)
{
    size_t used = (size_t)snprintf(msg, msglen, "argument(s) must be one of the following: ");
    for (size_t k = 0; d->enums[k] && used < msglen; k++)
        used += (size_t)snprintf(msg + used, msglen - used, "%s%s", k ? ", " : "", d->enums[k]);
}

/* Parse `value` for `d` into *out without touching any object.  Returns 0,
 * or <0 with the message in msg. */
static int parse_value(const cfg_def *d, const char *value, cfg_val *out, char *msg,
                       size_t msglen)
{
    size_t n = strlen(value);
    switch (d->type) {
    case CFG_BOOL:
        if (str_eq_nocase(value, n, "yes")) {
            out->b = true;
        } else if (str_eq_nocase(value, n, "no")) {
            out->b = false;
        } else {
            seterr(msg, msglen, "argument must be 'yes' or 'no'");
            return CAIRN_EINVAL;
        }
        return 0;
    case CFG_INT:
    case CFG_BYTES: {
        int64_t v;
        if (d->type == CFG_INT && !str_to_i64(value, n, &v)) {
            seterr(msg, msglen, "argument couldn't be parsed into an integer");
            return CAIRN_EINVAL;
        }
        if (d->type == CFG_BYTES && !parse_bytes(value, &v)) {
            seterr(msg, msglen, "argument must be a memory value");
            return CAIRN_EINVAL;
        }
        if ((d->min || d->max) && (v < d->min || v > d->max)) {
            seterr(msg, msglen, "argument must be between %" PRId64 " and %" PRId64 " inclusive",
                   d->min, d->max);
            return CAIRN_ERANGE;
        }
        out->i = v;
        return 0;
    }
    case CFG_ENUM:
        assert(d->enums && d->enums[0]);
        for (int k = 0; d->enums[k]; k++) {
            if (str_eq_nocase(value, n, d->enums[k])) {
                out->e = k;
                return 0;
            }
        }
        enum_message(d, msg, msglen);
        return CAIRN_EINVAL;
    case CFG_STRING:
        out->s = cairn_strndup(value, n);
        return 0;
    }
    assert(!"unknown cfg_type");
    return CAIRN_EINVAL;
}

static void store_value(const cfg_def *d, void *obj, cfg_val v)
{
    void *f = field(obj, d);
    switch (d->type) {
    case CFG_BOOL: *(bool *)f = v.b; break;
    case CFG_INT:
    case CFG_BYTES: *(int64_t *)f = v.i; break;
    case CFG_ENUM: *(int *)f = v.e; break;
    case CFG_STRING:
        cairn_free(*(char **)f);
        *(char **)f = v.s;
        break;
    }
}

static int set_def(const cfg_def *d, void *obj, const char *value, bool runtime, char *msg,
                   size_t msglen)
{
    if (runtime && (d->flags & CFG_IMMUTABLE)) {
        seterr(msg, msglen, "can't set immutable config");
        return CAIRN_EINVAL;
    }
    cfg_val v;
    int rc = parse_value(d, value, &v, msg, msglen);
    if (rc < 0) return rc;
    store_value(d, obj, v);
    return 0;
}

void cfg_defaults(const cfg_def *tab, void *obj)
{
    for (const cfg_def *d = tab; d->name; d++) {
        const char *def = d->def;
        if (!def) {
            switch (d->type) {
            case CFG_BOOL: def = "no"; break;
            case CFG_ENUM: def = d->enums[0]; break;
            case CFG_STRING: def = ""; break;
            default: def = "0"; break;
            }
        }
        char msg[MSG_MAX];
        int rc = set_def(d, obj, def, false, msg, sizeof(msg));
        assert(rc == 0 && "a default in the settings table does not parse");
        (void)rc;
    }
}

void cfg_free(const cfg_def *tab, void *obj)
{
    for (const cfg_def *d = tab; d->name; d++) {
        if (d->type != CFG_STRING) continue;
        char **s = field(obj, d);
        cairn_free(*s);
        *s = NULL;
    }
}

int cfg_set(const cfg_def *tab, void *obj, const char *name, const char *value, bool runtime,
            char *err, size_t errlen)
{
    assert(name && value);
    const cfg_def *d = cfg_lookup(tab, name);
    if (!d) {
        seterr(err, errlen, "unknown setting '%s'", name);
        return CAIRN_ENOTFOUND;
    }
    return set_def(d, obj, value, runtime, err, errlen);
}

/* ---- file ---------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Split the line [p, end) into words the way Redis's sdssplitargs() does
 * (unquoted, "double" with escapes, 'single'; a closing quote must be
 * followed by a blank or the end).  Decoded words are written NUL-terminated
 * to `out`, which needs end - p + 1 bytes; the first three are pointed to by
 * words[] and their lengths stored in lens[].  Returns the number of words,
 * or -1 for unbalanced quotes. */
static int split_line(const char *p, const char *end, char *out, const char *words[3],
                      size_t lens[3])
{
    int n = 0;
    for (;;) {
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p == end) return n;
        char *w = out;
        bool dq = false, sq = false, done = false;
        while (!done) {
            if (dq) {
                if (p == end) return -1;
                if (*p == '\\' && end - p >= 4 && p[1] == 'x' && hexval(p[2]) >= 0 &&
                    hexval(p[3]) >= 0) {
                    *out++ = (char)(hexval(p[2]) * 16 + hexval(p[3]));
                    p += 3;
                } else if (*p == '\\' && end - p >= 2) {
                    p++;
                    switch (*p) {
                    case 'n': *out++ = '\n'; break;
                    case 'r': *out++ = '\r'; break;
                    case 't': *out++ = '\t'; break;
                    case 'b': *out++ = '\b'; break;
                    case 'a': *out++ = '\a'; break;
                    default: *out++ = *p; break;
                    }
                } else if (*p == '"') {
                    if (end - p >= 2 && !isspace((unsigned char)p[1])) return -1;
                    done = true;
                } else {
                    *out++ = *p;
                }
            } else if (sq) {
                if (p == end) return -1;
                if (*p == '\\' && end - p >= 2 && p[1] == '\'') {
                    p++;
                    *out++ = '\'';
                } else if (*p == '\'') {
                    if (end - p >= 2 && !isspace((unsigned char)p[1])) return -1;
                    done = true;
                } else {
                    *out++ = *p;
                }
            } else if (p == end || isspace((unsigned char)*p)) {
                done = true;
            } else if (*p == '"') {
                dq = true;
            } else if (*p == '\'') {
                sq = true;
            } else {
                *out++ = *p;
            }
            if (p < end) p++;
        }
        if (n < 3) {
            words[n] = w;
            lens[n] = (size_t)(out - w);
        }
        *out++ = '\0';
        n++;
    }
}

/* Read the whole of `path` into a NUL-terminated cairn_malloc'd buffer. */
static int read_file(const char *path, char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno ? errno : EIO;
        seterr(err, errlen, "%s: %s", path, strerror(e));
        return -e;
    }
    size_t cap = 4096, n = 0;
    char *buf = cairn_malloc(cap);
    int rc = 0;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap > CFG_FILE_MAX) {
                seterr(err, errlen, "%s: larger than the %d-byte limit", path, CFG_FILE_MAX);
                rc = CAIRN_ELIMIT;
                goto fail_buf;
            }
            cap *= 2;
            buf = cairn_realloc(buf, cap);
        }
        errno = 0;
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        seterr(err, errlen, "%s: %s", path, strerror(e));
        rc = -e;
        goto fail_buf;
    }
    if (n > CFG_FILE_MAX) {
        seterr(err, errlen, "%s: larger than the %d-byte limit", path, CFG_FILE_MAX);
        rc = CAIRN_ELIMIT;
        goto fail_buf;
    }
    fclose(f);
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;

fail_buf:
    cairn_free(buf);
    fclose(f);
    return rc;
}

int cfg_load_file(const cfg_def *tab, void *obj, const char *path, char *err, size_t errlen)
{
    char *data = NULL;
    size_t len = 0;
    int rc = read_file(path, &data, &len, err, errlen);
    if (rc < 0) return rc;

    char *scratch = cairn_malloc(len + 1);
    char msg[MSG_MAX];
    int lineno = 0;
    for (const char *p = data, *end = data + len; p < end;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        const char *line = p;
        p = eol < end ? eol + 1 : end;
        lineno++;

        const char *first = line;
        while (first < eol && isspace((unsigned char)*first)) first++;
        if (first == eol || *first == '#') continue;
        if (memchr(line, '\0', (size_t)(eol - line))) {
            seterr(err, errlen, "%s:%d: line contains a NUL byte", path, lineno);
            rc = CAIRN_EINVAL;
            goto out;
        }

        const char *words[3];
        size_t lens[3];
        int nw = split_line(first, eol, scratch, words, lens);
        if (nw < 0) {
            seterr(err, errlen, "%s:%d: unbalanced quotes in configuration line", path, lineno);
            rc = CAIRN_EINVAL;
            goto out;
        }
        const char *name = words[0];
        const cfg_def *d = lookup_n(tab, name, lens[0]);
        if (!d) {
            seterr(err, errlen, "%s:%d: unknown setting '%s'", path, lineno, name);
            rc = CAIRN_ENOTFOUND;
            goto out;
        }
        if (nw != 2) {
            seterr(err, errlen, "%s:%d: %s: %s", path, lineno, name,
                   nw < 2 ? "missing value" : "too many arguments (quote a value with spaces)");
            rc = CAIRN_EINVAL;
            goto out;
        }
        if (strlen(words[1]) != lens[1]) { /* a quoted \x00 */
            seterr(err, errlen, "%s:%d: %s: value contains a NUL byte", path, lineno, name);
            rc = CAIRN_EINVAL;
            goto out;
        }
        rc = set_def(d, obj, words[1], false, msg, sizeof(msg));
        if (rc < 0) {
            seterr(err, errlen, "%s:%d: %s: %s", path, lineno, name, msg);
            goto out;
        }
    }
    rc = 0;

out:
    cairn_free(scratch);
    cairn_free(data);
    return rc;
}

/* ---- command line -------------------------------------------------------- */

/* If `arg` is a flag ("--x" or "--x=v"), set its name span and value (NULL
 * without '=') and return true. */
static bool split_flag(const char *arg, const char **name, size_t *nlen, const char **value)
{
    if (arg[0] != '-' || arg[1] != '-' || arg[2] == '\0' || arg[2] == '=') return false;
    *name = arg + 2;
    const char *eq = strchr(*name, '=');
    *nlen = eq ? (size_t)(eq - *name) : strlen(*name);
    *value = eq ? eq + 1 : NULL;
    return true;
}

int cfg_load_args(const cfg_def *tab, void *obj, int argc, char **argv, int first, char *err,
                  size_t errlen)
{
    char msg[MSG_MAX];
    for (int i = first; i < argc; i++) {
        const char *name, *value;
        size_t nlen;
        if (!split_flag(argv[i], &name, &nlen, &value)) {
            seterr(err, errlen, "unexpected argument '%s'", argv[i]);
            return CAIRN_EINVAL;
        }
        int nl = nlen > INT32_MAX ? INT32_MAX : (int)nlen;
        const cfg_def *d = lookup_n(tab, name, nlen);
        if (!d) {
            seterr(err, errlen, "--%.*s: unknown setting '%.*s'", nl, name, nl, name);
            return CAIRN_ENOTFOUND;
        }
        if (!value) {
            if (i + 1 >= argc) {
                seterr(err, errlen, "--%.*s: missing value", nl, name);
                return CAIRN_EINVAL;
            }
            value = argv[++i];
        }
        int rc = set_def(d, obj, value, false, msg, sizeof(msg));
        if (rc < 0) {
            seterr(err, errlen, "--%.*s: %s", nl, name, msg);
            return rc;
        }
    }
    return 0;
}

const char *cfg_find_flag(int argc, char **argv, int first, const char *want)
{
    const char *found = NULL;
    for (int i = first; i < argc; i++) {
        const char *name, *value;
        size_t nlen;
        if (!split_flag(argv[i], &name, &nlen, &value)) continue;
        if (!value && i + 1 < argc) value = argv[++i];
        if (value && str_eq_nocase(name, nlen, want)) found = value;
    }
    return found;
}

/* ---- introspection ------------------------------------------------------- */

size_t cfg_get(const cfg_def *tab, const void *obj, const cfg_def *d, char *out, size_t outlen)
{
    (void)tab;
    char num[24];
    const char *s = NULL;
    const void *f = cfield(obj, d);
    switch (d->type) {
    case CFG_BOOL: s = *(const bool *)f ? "yes" : "no"; break;
    case CFG_INT:
    case CFG_BYTES:
        num[i64_to_str(num, *(const int64_t *)f)] = '\0';
        s = num;
        break;
    case CFG_ENUM: {
        int e = *(const int *)f;
        int count = 0;
        while (d->enums[count]) count++;
        assert(e >= 0 && e < count);
        s = e >= 0 && e < count ? d->enums[e] : "";
        break;
    }
    case CFG_STRING:
        s = *(char *const *)f;
        if (!s) s = "";
        break;
    }
    size_t len = strlen(s);
    if (outlen > 0) {
        size_t w = len < outlen - 1 ? len : outlen - 1;
        memcpy(out, s, w);
        out[w] = '\0';
    }
    return len;
}

const cfg_def *cfg_lookup(const cfg_def *tab, const char *name)
{
    return lookup_n(tab, name, strlen(name));
}

void cfg_match(const cfg_def *tab, const char *pattern, void (*fn)(void *arg, const cfg_def *d),
               void *arg)
{
    size_t plen = strlen(pattern);
    for (const cfg_def *d = tab; d->name; d++) {
        bool hit = glob_match(pattern, plen, d->name, strlen(d->name), true);
        if (!hit && d->alias) hit = glob_match(pattern, plen, d->alias, strlen(d->alias), true);
        if (hit) fn(arg, d);
    }
}

const char *cfg_name(const cfg_def *d) { return d->name; }

void cfg_print_help(const cfg_def *tab, FILE *f)
{
    for (const cfg_def *d = tab; d->name; d++) {
        char val[160];
        if (d->type == CFG_ENUM && d->enums) {
            size_t l = 0;
            val[0] = '\0';
            for (const char *const *e = d->enums; *e && l < sizeof(val) - 1; e++)
                l += (size_t)snprintf(val + l, sizeof(val) - l, "%s%s", l ? "|" : "", *e);
            fprintf(f, "  --%-28s %s (default %s)\n", d->name, val, d->def ? d->def : d->enums[0]);
        } else {
            fprintf(f, "  --%-28s default: %s\n", d->name, d->def && d->def[0] ? d->def : "(none)");
        }
    }
}
