/*
 * resp.c — RESP requests and replies (API and ownership rules in resp.h).
 *
 * Wire format.  Every line ends in CRLF; N is a decimal with Redis's
 * string2ll rules (no '+', no leading zeros, at most 20 characters).
 *
 *   byte  since  type           rest of the first line    then
 *   ----  -----  -------------  ------------------------  --------------------------
 *    *    RESP2  array          N  (-1: nil array)        N replies
 *    $    RESP2  bulk string    N  (-1: nil)              N bytes, CRLF
 *    +    RESP2  simple string  text                      -
 *    -    RESP2  error          text                      -
 *    :    RESP2  integer        signed 64-bit decimal     -
 *    _    RESP3  null           (empty)                   -
 *    ,    RESP3  double         1.5 / inf / -inf / nan    -
 *    #    RESP3  boolean        t or f                    -
 *    !    RESP3  blob error     N                         N bytes, CRLF
 *    =    RESP3  verbatim       N (>= 4)                  "txt:" and N-4 bytes, CRLF
 *    (    RESP3  big number     [-]digits                 -
 *    %    RESP3  map            N pairs                   2N replies
 *    ~    RESP3  set            N                         N replies
 *    >    RESP3  push           N                         N replies
 *    |    RESP3  attribute      N pairs                   2N replies, then the reply
 *                                                         they describe
 *
 * A client sends requests in one of two forms; the first byte decides:
 *
 *   '*'      multibulk  *N CRLF, then N times  $len CRLF <len bytes> CRLF
 *   other    inline     words split like sdssplitargs(), ended by LF or CRLF
 *
 * Request parser states.  resp_parse_request() picks the form at START;
 * each later state is resumed by the named function on the next call, at
 * p->pos, with [p->pos, p->scan) already known to hold no terminator:
 *
 *   START --'*'---> COUNT --parse_multibulk--> BULK_HDR <-----> BULK_DATA
 *     |               |  (*0, *-1)                 (last bulk)  |
 *     |               +------------------------> done <---------+
 *     +--other---> INLINE --parse_inline + split_inline--> done
 *
 * Any state may end in CAIRN_EPROTO; "done" and errors return to START.
 */
#include "lib/resp.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mem.h"
#include "lib/util.h"

enum { ST_START, ST_INLINE, ST_COUNT, ST_BULK_HDR, ST_BULK_DATA };

/* However large "*N" claims to be, argv starts at this size and grows with
 * the bulks that actually arrive (Redis does the same): a count costs the
 * client a few bytes, memory must be paid for with data. */
#define ARGV_FIRST 1024
/* Between requests the parser keeps this much; a huge request's arrays are
 * released when the next one starts. */
#define ARGV_KEEP    1024
#define SCRATCH_KEEP ((size_t)16 * 1024)

static size_t sat_add(size_t a, size_t b) { return a > SIZE_MAX - b ? SIZE_MAX : a + b; }

/* isspace() in the C locale, without its locale and sign pitfalls. */
static bool is_space(char c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

static int hex_val(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* ---- Request parser: bookkeeping -------------------------------------- */

void resp_parser_init(resp_parser *p, const resp_limits *lim)
{
    static const resp_limits defaults = {
        RESP_MAX_BULK_DEFAULT, RESP_MAX_ARGS_DEFAULT, RESP_MAX_INLINE_DEFAULT,
    };
    memset(p, 0, sizeof(*p));
    p->lim = lim ? *lim : defaults;
    p->state = ST_START;
}

void resp_parser_close(resp_parser *p)
{
    cairn_free(p->argv);
    cairn_free(p->off);
    cairn_free(p->scratch);
    memset(p, 0, sizeof(*p));
}

/* A new request begins: the previous argv is dead by contract. */
static void begin(resp_parser *p)
{
    p->argc = 0;
    p->err = NULL;
    p->pos = p->scan = p->left = p->bulklen = p->seen = 0;
    if (p->cap > ARGV_KEEP) {
        cairn_free(p->argv);
        cairn_free(p->off);
        p->argv = NULL;
        p->off = NULL;
        p->cap = 0;
    }
    if (p->scratch_cap > SCRATCH_KEEP) {
        cairn_free(p->scratch);
        p->scratch = NULL;
        p->scratch_cap = 0;
    }
}

void resp_parser_reset(resp_parser *p)
{
    begin(p);
    p->state = ST_START;
}

static void reserve(resp_parser *p, size_t n)
{
    if (n <= p->cap) return;
    p->argv = cairn_realloc(p->argv, n * sizeof(*p->argv));
    p->off = cairn_realloc(p->off, n * sizeof(*p->off));
    p->cap = n;
}

static int fail(resp_parser *p, const char *msg)
{
    p->err = msg;
    return CAIRN_EPROTO;
}

/* Search for `term` from p->scan, but not at or beyond `limit` (an offset
 * from the request start): a line whose terminator is not before `limit` is
 * too long.  Returns 0 with *at, CAIRN_EAGAIN, or CAIRN_ELIMIT.  p->scan
 * remembers how far the search got, so bytes are searched once however the
 * request is split (a found terminator is kept at p->scan, for the caller
 * that must wait for the byte after it). */
static int find_term(resp_parser *p, const char *buf, size_t len, char term,
                     size_t limit, size_t *at)
{
    size_t end = len < limit ? len : limit;
    if (p->scan < end) {
        const char *hit = memchr(buf + p->scan, term, end - p->scan);
        size_t stop = hit ? (size_t)(hit - buf) : end;
        p->examined += stop - p->scan + (hit != NULL);
        p->scan = stop;
        if (hit) {
            *at = stop;
            return 0;
        }
    }
    return len >= limit ? CAIRN_ELIMIT : CAIRN_EAGAIN;
}

/* ---- Request parser: multibulk ---------------------------------------- */

/* The "*N" or "$N" line at p->pos, up to its '\r'.  As in Redis, the '\r'
 * must come within max_inline bytes of the line start, and the byte after
 * it must have arrived but is not checked: it is skipped as the '\n'. */
static int header_line(resp_parser *p, const char *buf, size_t len, size_t *cr)
{
    size_t limit = sat_add(p->pos, sat_add(p->lim.max_inline, 1));
    int rc = find_term(p, buf, len, '\r', limit, cr);
    if (rc == 0 && *cr + 1 >= len) rc = CAIRN_EAGAIN;
    return rc;
}

/* The common case of a header line, "*N\r\n" or "$N\r\n" with N written
 * plainly (no sign, no leading zero, at most 18 digits) and the '\n' byte
 * arrived: its number and '\r' in one pass.  Anything else (including every
 * malformed line) is left to header_line and str_to_i64, which decide. */
static bool header_fast(const resp_parser *p, const char *buf, size_t len, size_t *cr, int64_t *val)
{
    size_t i = p->pos + 1, end = i + 18;
    if (i >= len) return false;
    unsigned d = (unsigned char)buf[i] - '0';
    if (d > 9) return false;
    int64_t v = d;
    i++;
    if (d != 0)
        while (i < len && i < end && (d = (unsigned char)buf[i] - '0') <= 9) {
            v = v * 10 + d;
            i++;
        }
    if (i + 1 >= len || buf[i] != '\r' || i - p->pos > p->lim.max_inline) return false;
    *cr = i;
    *val = v;
    return true;
}

static int fail_dollar(resp_parser *p, char got)
{
    /* Redis prints the byte raw, then turns CR and LF into spaces so the
     * reply stays one line.  NUL (which Redis's strchr never lets through
     * to here) becomes a space too, so that err stays a C string. */
    if (got == '\r' || got == '\n' || got == '\0') got = ' ';
    snprintf(p->errbuf, sizeof(p->errbuf), "Protocol error: expected '$', got '%c'", got);
    return fail(p, p->errbuf);
}

static int parse_multibulk(resp_parser *p, const char *buf, size_t len)
{
    size_t cr;
    int64_t ll;
    int rc;

    if (p->state == ST_COUNT) {
        if (!header_fast(p, buf, len, &cr, &ll)) {
            rc = header_line(p, buf, len, &cr);
            if (rc == CAIRN_ELIMIT) return fail(p, "Protocol error: too big mbulk count string");
            if (rc) return rc;
            if (!str_to_i64(buf + p->pos + 1, cr - p->pos - 1, &ll))
                return fail(p, "Protocol error: invalid multibulk length");
        }
        if (ll > 0 && (uint64_t)ll > p->lim.max_args) return fail(p, "Protocol error: invalid multibulk length");
        p->pos = p->scan = cr + 2;
        if (ll <= 0) return 0; /* "*0" and "*-1": an empty request */
        p->left = (size_t)ll;
        reserve(p, p->left < ARGV_FIRST ? p->left : ARGV_FIRST);
        p->state = ST_BULK_HDR;
    }

    while (p->left > 0) {
        if (p->state == ST_BULK_HDR) {
            if (p->pos >= len || buf[p->pos] != '$' || !header_fast(p, buf, len, &cr, &ll)) {
                rc = header_line(p, buf, len, &cr);
                if (rc == CAIRN_ELIMIT) return fail(p, "Protocol error: too big bulk count string");
                if (rc) return rc;
                if (buf[p->pos] != '$') return fail_dollar(p, buf[p->pos]);
                if (!str_to_i64(buf + p->pos + 1, cr - p->pos - 1, &ll) || ll < 0)
                    return fail(p, "Protocol error: invalid bulk length");
            }
            if ((uint64_t)ll > p->lim.max_bulk) return fail(p, "Protocol error: invalid bulk length");
            p->pos = p->scan = cr + 2;
            p->bulklen = (size_t)ll;
            p->state = ST_BULK_DATA;
        }
        /* The payload is never looked at, only counted: zero-copy, and a big
         * value fed in pieces costs one comparison per piece.  Redis skips
         * the two bytes after it without checking that they are CRLF. */
        size_t avail = len - p->pos;
        if (avail < 2 || avail - 2 < p->bulklen) return CAIRN_EAGAIN;
        if (p->argc == p->cap)
            reserve(p, p->cap * 2 < p->argc + p->left ? p->cap * 2 : p->argc + p->left);
        p->off[p->argc] = p->pos;
        p->argv[p->argc].len = p->bulklen;
        p->argc++;
        p->pos = p->scan = p->pos + p->bulklen + 2;
        p->left--;
        p->state = ST_BULK_HDR;
    }
    /* Only now is `buf` known to stay put until the caller is done. */
    for (size_t k = 0; k < p->argc; k++) p->argv[k].p = buf + p->off[k];
    return 0;
}

/* ---- Request parser: inline ------------------------------------------- */

/* The bytes that end an unquoted word.  Not \v or \f: sdssplitargs() skips
 * them between words (isspace) but keeps them inside one. */
static bool ends_word(char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

static void add_arg(resp_parser *p, const char *s, size_t n)
{
    if (p->argc == p->cap) reserve(p, p->cap ? p->cap * 2 : 16);
    p->argv[p->argc].p = s;
    p->argv[p->argc].len = n;
    p->argc++;
}

/* One word that has quotes in it, from s[*ip], written unescaped to *outp:
 * sdssplitargs()'s token loop, reading a counted string where Redis reads a
 * NUL-terminated one.  In "double quotes": \xHH, \n \r \t \b \a, and
 * backslash-anything is that thing; in 'single quotes' only \' is special.
 * A closing quote must be followed by a space or the end of the line.
 * Returns false for the "unbalanced quotes" error. */
static bool unquote_word(const char *s, size_t n, size_t *ip, char **outp)
{
    size_t i = *ip;
    char *o = *outp;
    bool inq = false, insq = false;

    for (;;) {
        if (i == n) {
            if (inq || insq) return false;
            break;
        }
        char c = s[i];
        if (inq) {
            if (c == '\\' && i + 3 < n && s[i + 1] == 'x' && hex_val(s[i + 2]) >= 0 &&
                hex_val(s[i + 3]) >= 0) {
                *o++ = (char)(hex_val(s[i + 2]) * 16 + hex_val(s[i + 3]));
                i += 4;
            } else if (c == '\\' && i + 1 < n) {
                char e = s[i + 1];
                *o++ = e == 'n' ? '\n' : e == 'r' ? '\r' : e == 't' ? '\t'
                     : e == 'b' ? '\b' : e == 'a' ? '\a' : e;
                i += 2;
            } else if (c == '"') {
                if (i + 1 < n && !is_space(s[i + 1])) return false;
                i++;
                break;
            } else {
                *o++ = c;
                i++;
            }
        } else if (insq) {
            if (c == '\\' && i + 1 < n && s[i + 1] == '\'') {
                *o++ = '\'';
                i += 2;
            } else if (c == '\'') {
                if (i + 1 < n && !is_space(s[i + 1])) return false;
                i++;
                break;
            } else {
                *o++ = c;
                i++;
            }
        } else {
            i++;
            if (ends_word(c)) break;
            if (c == '"') inq = true;
            else if (c == '\'') insq = true;
            else *o++ = c;
        }
    }
    *ip = i;
    *outp = o;
    return true;
}

/* sdssplitargs() over the line s[0..n).  Plain words point into the
 * caller's buffer; only words with quotes are rebuilt, in scratch. */
static int split_inline(resp_parser *p, const char *s, size_t n)
{
    char *out = NULL;
    size_t i = 0;

    for (;;) {
        while (i < n && is_space(s[i])) i++;
        if (i == n) return 0;
        size_t start = i;
        while (i < n && !ends_word(s[i]) && s[i] != '"' && s[i] != '\'') i++;
        if (i == n || ends_word(s[i])) {
            add_arg(p, s + start, i - start);
            continue;
        }
        if (!out) {
            /* Undoing quotes never lengthens a word, so n bytes hold every
             * rebuilt word of the line: scratch never moves under the argv
             * it feeds. */
            if (n > p->scratch_cap) {
                cairn_free(p->scratch);
                p->scratch = cairn_malloc(n);
                p->scratch_cap = n;
            }
            out = p->scratch;
        }
        char *word = out;
        i = start;
        if (!unquote_word(s, n, &i, &out))
            return fail(p, "Protocol error: unbalanced quotes in request");
        add_arg(p, word, (size_t)(out - word));
    }
}

static int parse_inline(resp_parser *p, const char *buf, size_t len)
{
    size_t max = p->lim.max_inline, nl, n;

    /* Content may be max bytes, then "\r\n": so '\n' may sit at max + 1. */
    int rc = find_term(p, buf, len, '\n', sat_add(max, 2), &nl);
    if (rc == CAIRN_ELIMIT) return fail(p, "Protocol error: too big inline request");
    if (rc == CAIRN_EAGAIN) {
        /* Redis: "no newline and more than max bytes".  max + 1 bytes ending
         * in '\r' may still be max bytes of content whose '\n' is on its way,
         * and Redis accepts those when the CRLF arrives in one read. */
        if (len > max && !(len == max + 1 && buf[max] == '\r'))
            return fail(p, "Protocol error: too big inline request");
        return rc;
    }
    n = nl > 0 && buf[nl - 1] == '\r' ? nl - 1 : nl;
    if (n > max) return fail(p, "Protocol error: too big inline request");
    p->pos = nl + 1;
    return split_inline(p, buf, n);
}

/* ---- Request parser: entry points ------------------------------------- */

int resp_parse_request(resp_parser *p, const char *buf, size_t len, size_t *consumed)
{
    int rc;

    if (p->state == ST_START) {
        begin(p);
        if (len == 0) return CAIRN_EAGAIN;
        p->state = buf[0] == '*' ? ST_COUNT : ST_INLINE;
    }
    assert(len >= p->seen); /* the caller keeps what it gave us */
    p->seen = len;
    rc = p->state == ST_INLINE ? parse_inline(p, buf, len) : parse_multibulk(p, buf, len);
    if (rc == 0) *consumed = p->pos;
    if (rc == CAIRN_EPROTO) p->argc = 0;
    if (rc != CAIRN_EAGAIN) p->state = ST_START;
    return rc;
}

size_t resp_parser_need(const resp_parser *p)
{
    if (p->state != ST_BULK_DATA) return 0;
    size_t end = sat_add(p->pos, sat_add(p->bulklen, 2));
    return end > p->seen ? end - p->seen : 0;
}

/* ---- Replies: one element --------------------------------------------- */

/* What scan_item() found at one position. */
struct item {
    char type;      /* the wire byte */
    bool agg;       /* an aggregate header (a nil "*-1" is not) */
    bool nil;       /* "$-1" or "*-1" */
    size_t end;     /* just past the item (aggregates: past their header) */
    uint64_t count; /* aggregates: replies that follow (2N for % and |) */
    const char *s;  /* line text, or bulk payload */
    size_t slen;
    int64_t i;
    double d;
};

/* The CRLF ending the line that starts at `from` (<= len): 0 with *cr at its
 * '\r'.  A line longer than `max` is malformed before its end arrives, so a
 * stream of digits cannot make us wait forever. */
static int reply_line(const char *buf, size_t len, size_t from, size_t max, size_t *cr)
{
    size_t avail = len - from;
    size_t window = avail <= max ? avail : max + 1;
    const char *hit = memchr(buf + from, '\r', window);
    if (!hit) return avail > max ? CAIRN_EPROTO : CAIRN_EAGAIN;
    *cr = (size_t)(hit - buf);
    if (*cr + 1 == len) return CAIRN_EAGAIN;
    return buf[*cr + 1] == '\n' ? 0 : CAIRN_EPROTO;
}

static bool parse_double(const char *s, size_t n, double *d)
{
    char tmp[400]; /* %.17g needs 24; a long %f form still fits */
    char *end;
    if (n == 0 || n >= sizeof(tmp) || is_space(s[0])) return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    *d = strtod(tmp, &end);
    return end == tmp + n;
}

static bool is_bignum(const char *s, size_t n)
{
    size_t i = n > 0 && s[0] == '-';
    if (i == n) return false;
    for (; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

/* Read the element (or aggregate header) at buf[pos]. */
static int scan_item(const char *buf, size_t len, size_t pos, struct item *it)
{
    size_t cr, eol, max = SIZE_MAX;
    int64_t n;
    int rc;

    if (pos >= len) return CAIRN_EAGAIN;
    memset(it, 0, sizeof(*it));
    it->type = buf[pos];
    switch (it->type) {
    case '+': case '-': case ':': case ',': case '(': break;
    case '_': max = 0; break;
    case '#': max = 1; break;
    case '$': case '*': case '!': case '=': case '%': case '~': case '>': case '|':
        max = 20; /* what str_to_i64 accepts */
        break;
    default: return CAIRN_EPROTO; /* including RESP3's streamed '?' parts */
    }
    rc = reply_line(buf, len, pos + 1, max, &cr);
    if (rc) return rc;
    it->s = buf + pos + 1;
    it->slen = cr - pos - 1;
    it->end = eol = cr + 2;

    switch (it->type) {
    case '+': case '-': return 0;
    case ':': return str_to_i64(it->s, it->slen, &it->i) ? 0 : CAIRN_EPROTO;
    case '_': return 0;
    case '#':
        if (it->slen != 1 || (it->s[0] != 't' && it->s[0] != 'f')) return CAIRN_EPROTO;
        it->i = it->s[0] == 't';
        return 0;
    case ',': return parse_double(it->s, it->slen, &it->d) ? 0 : CAIRN_EPROTO;
    case '(': return is_bignum(it->s, it->slen) ? 0 : CAIRN_EPROTO;
    }

    if (!str_to_i64(it->s, it->slen, &n)) return CAIRN_EPROTO;
    if (n < 0) {
        if (n != -1 || (it->type != '$' && it->type != '*')) return CAIRN_EPROTO;
        it->nil = true;
        return 0;
    }
    if (it->type == '$' || it->type == '!' || it->type == '=') {
        size_t avail = len - eol, blen = (uint64_t)n;
        if (it->type == '=' && blen < 4) return CAIRN_EPROTO;
        /* Judge every byte as soon as it arrives, so garbage is rejected
         * early rather than after waiting for a length it invented. */
        if (it->type == '=' && avail > 3 && buf[eol + 3] != ':') return CAIRN_EPROTO;
        if (avail > blen && buf[eol + blen] != '\r') return CAIRN_EPROTO;
        if (avail > blen + 1 && buf[eol + blen + 1] != '\n') return CAIRN_EPROTO;
        if (avail < 2 || avail - 2 < blen) return CAIRN_EAGAIN;
        it->s = buf + eol;
        it->slen = blen;
        it->end = eol + blen + 2;
        return 0;
    }
    it->agg = true;
    it->count = (uint64_t)n;
    if (it->type == '%' || it->type == '|') {
        if (n > INT64_MAX / 2) return CAIRN_EPROTO;
        it->count *= 2;
    }
    return 0;
}

/* ---- Replies: scanner ------------------------------------------------- */

int resp_scan_reply(const char *buf, size_t len, size_t max_depth, size_t *frame_len)
{
    /* left[d]: replies still owed at nesting depth d (0: the top level).
     * One counter per level, so no recursion and no allocation. */
    uint64_t left[RESP_DEPTH_MAX + 1];
    size_t depth = 0, pos = 0;
    struct item it;

    if (max_depth > RESP_DEPTH_MAX) max_depth = RESP_DEPTH_MAX;
    left[0] = 1;
    for (;;) {
        int rc = scan_item(buf, len, pos, &it);
        if (rc) return rc;
        pos = it.end;
        /* An attribute annotates the reply after it and fills no slot. */
        if (it.type != '|') left[depth]--;
        if (it.agg) {
            if (depth >= max_depth) return CAIRN_EPROTO;
            if (it.count > 0) {
                left[++depth] = it.count;
                continue;
            }
        }
        while (left[depth] == 0) {
            if (depth == 0) {
                *frame_len = pos;
                return 0;
            }
            depth--;
        }
    }
}

/* ---- Replies: tree reader --------------------------------------------- */

const char *resp_type_name(resp_type t)
{
    switch (t) {
#define RESP_TYPE_NAME(name, byte, text) case RESP_##name: return text;
        RESP_TYPE_MAP(RESP_TYPE_NAME)
#undef RESP_TYPE_NAME
    }
    return "unknown";
}

static resp_type type_of(char byte)
{
    switch (byte) {
#define RESP_TYPE_CASE(name, b, text) case b: return RESP_##name;
        RESP_TYPE_MAP(RESP_TYPE_CASE)
#undef RESP_TYPE_CASE
    }
    assert(0 && "scan_item let an unknown type through");
    return RESP_NIL;
}

/* Build the value at *pos of a frame resp_scan_reply() has validated, so
 * nothing can fail and recursion is at most RESP_DEPTH_MAX deep.  Element
 * counts are safe to allocate: each element is at least 3 bytes of frame. */
static resp_value *build(const char *buf, size_t len, size_t *pos)
{
    resp_value *attr = NULL, *v;
    struct item it;

    for (;;) {
        int rc = scan_item(buf, len, *pos, &it);
        assert(rc == 0);
        (void)rc;
        *pos = it.end;
        v = cairn_calloc(1, sizeof(*v));
        v->type = it.nil ? RESP_NIL : type_of(it.type);
        if (it.agg) {
            v->n = (size_t)it.count;
            v->elem = cairn_malloc(v->n * sizeof(*v->elem));
            for (size_t k = 0; k < v->n; k++) v->elem[k] = build(buf, len, pos);
        }
        if (it.type != '|') break;
        /* Several attributes before one reply: keep the last, like hiredis. */
        resp_value_free(attr);
        attr = v;
    }
    v->attr = attr;
    v->i = it.i;
    v->d = it.d;
    if (it.nil || it.agg || it.type == ':' || it.type == '#' || it.type == '_') return v;
    if (it.type == '=') {
        memcpy(v->fmt, it.s, 3);
        it.s += 4;
        it.slen -= 4;
    }
    v->s = cairn_strndup(it.s, it.slen);
    v->len = it.slen;
    return v;
}

int resp_read_value(const char *buf, size_t len, resp_value **out, size_t *consumed)
{
    size_t flen, pos = 0;
    int rc = resp_scan_reply(buf, len, RESP_DEPTH_MAX, &flen);

    *out = NULL;
    if (rc) return rc;
    *out = build(buf, flen, &pos);
    assert(pos == flen);
    *consumed = flen;
    return 0;
}

void resp_value_free(resp_value *v)
{
    if (!v) return;
    for (size_t k = 0; k < v->n; k++) resp_value_free(v->elem[k]);
    cairn_free(v->elem);
    resp_value_free(v->attr);
    cairn_free(v->s);
    cairn_free(v);
}
