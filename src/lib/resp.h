/*
 * resp.h — the Redis protocol as bytes in, frames out.  Nothing here touches
 * a socket (the hiredis read.c model); resp.c opens with the wire format.
 *
 *   resp_parser      server side: client requests (RESP2 multibulk and
 *                    inline) into argv.  Incremental, zero-copy, hard
 *                    limits, and Redis 7's exact protocol error texts.
 *   resp_scan_reply  client side: the length of one complete RESP2/RESP3
 *                    reply, for forwarding it untouched.  No allocation.
 *   resp_read_value  client side: one reply into a tree (ctl tool, tests).
 */
#ifndef CAIRN_RESP_H
#define CAIRN_RESP_H

#include <stddef.h>
#include <stdint.h>

/* ---- Request parser --------------------------------------------------- */

/* Redis's proto-max-bulk-len, its old multibulk count cap, and
 * PROTO_INLINE_MAX_SIZE. */
#define RESP_MAX_BULK_DEFAULT   ((size_t)512 * 1024 * 1024)
#define RESP_MAX_ARGS_DEFAULT   ((size_t)1024 * 1024)
#define RESP_MAX_INLINE_DEFAULT ((size_t)64 * 1024)

typedef struct resp_limits {
    size_t max_bulk;   /* longest bulk argument: "$N" with N above is an error */
    size_t max_args;   /* largest multibulk count: "*N" with N above is an error */
    size_t max_inline; /* longest inline request (without its line ending), and
                          longest "*N" / "$N" header before its '\r' */
} resp_limits;

typedef struct resp_arg {
    const char *p; /* not NUL-terminated; may contain any byte */
    size_t len;
} resp_arg;

/* Embedded by its owner (init/close).  Fields marked private are the state
 * that lets a request arriving in pieces be scanned once; do not touch. */
typedef struct resp_parser {
    /* Valid after resp_parse_request() returned 0, until the next call to
     * resp_parse_request(), resp_parser_reset() or resp_parser_close() AND
     * only while the caller's buffer is unchanged: argv[i].p points into the
     * caller's buffer, or into the parser's own scratch for inline arguments
     * that had quotes to undo. */
    resp_arg *argv;
    size_t argc;
    /* After CAIRN_EPROTO: the error text without the "ERR " prefix (static or
     * inside the parser; valid until the next call). */
    const char *err;
    /* Bytes inspected while searching for line terminators since init.  A
     * test witness that a request fed in pieces is searched once, not once
     * per piece; bulk payloads are never inspected at all. */
    uint64_t examined;

    /* private */
    resp_limits lim;
    int state;
    size_t pos;         /* next unparsed byte, as an offset from the request start */
    size_t scan;        /* [pos, scan) is known to hold no line terminator */
    size_t left;        /* bulks still expected by the multibulk count */
    size_t bulklen;     /* payload length of the bulk being awaited */
    size_t seen;        /* `len` of the last call, for resp_parser_need() */
    size_t *off;        /* off[i]: argv[i]'s offset from the request start */
    size_t cap;         /* slots in argv and off */
    char *scratch;      /* unescaped inline arguments */
    size_t scratch_cap;
    char errbuf[48];
} resp_parser;

/* `lim` is copied; NULL means the *_DEFAULT limits.  Never fails. */
void resp_parser_init(resp_parser *p, const resp_limits *lim);
/* Frees everything the parser owns; argv pointers die with it. */
void resp_parser_close(resp_parser *p);
/* Forget a partially parsed request (and the last argv).  Use it before
 * feeding the parser a buffer that does not start where the last one did. */
void resp_parser_reset(resp_parser *p);

/* Parse one request from buf[0..len), where buf[0] is the first byte of the
 * current (possibly partial) request.  Returns:
 *
 *   0             *consumed = the request's length.  argv[0..argc) is the
 *                 request; argc is 0 for an empty inline line and for "*0" or
 *                 a negative count, which the caller should skip like Redis.
 *                 The next call starts a new request at buf + *consumed.
 *   CAIRN_EAGAIN  incomplete.  Keep the bytes, append more, and call again
 *                 with the SAME first byte (the buffer may have moved and
 *                 grown: the parser keeps offsets, not pointers, and resumes
 *                 where it stopped without rescanning).  `len` must not shrink.
 *   CAIRN_EPROTO  protocol error; p->err holds Redis's text.  The caller
 *                 replies "-ERR <err>" and closes the connection, as Redis
 *                 does.  The parser is reset and could be reused.
 *
 * Redis 7 semantics (networking.c processMultibulkBuffer/processInlineBuffer),
 * with two deliberate differences, both about input Redis would answer late
 * or not at all:
 *   - limits are applied to positions, not to what happened to arrive in one
 *     read, so the result never depends on how the bytes were split;
 *   - a NUL byte is ordinary data everywhere.  Redis searches with strchr(),
 *     which stops at NUL, so it waits for more input there (a hang until the
 *     size limit); cairn answers.
 * Redis's "unauthenticated multibulk/bulk length" checks are the caller's
 * (they depend on auth state); pass tighter limits or check argv after. */
int resp_parse_request(resp_parser *p, const char *buf, size_t len, size_t *consumed);

/* After CAIRN_EAGAIN: how many bytes beyond the `len` of the last call the
 * current request needs at least (the rest of a bulk payload and its CRLF),
 * or 0 when unknown.  Lets the caller size its buffer once for a big value. */
size_t resp_parser_need(const resp_parser *p);

/* ---- Replies ---------------------------------------------------------- */

/* Deepest nesting resp_scan_reply() can track; larger max_depth is clamped.
 * Redis replies nest a few levels (hiredis allows 7). */
#define RESP_DEPTH_MAX 64

/* If buf[0..len) begins with one complete RESP2 or RESP3 reply, set
 * *frame_len to its length in bytes and return 0; CAIRN_EAGAIN if it is
 * still incomplete; CAIRN_EPROTO if malformed (unknown type byte, bad
 * number, missing CRLF, aggregates nested more than `max_depth` levels, a
 * count header longer than 20 digits, RESP3 streamed "?" lengths).  An
 * attribute ("|") is part of the reply that follows it, so the frame covers
 * both.  Pure; no allocation.  Each call scans from buf[0]: for a large
 * aggregate arriving in pieces, call it when more bytes arrive, not per
 * byte. */
int resp_scan_reply(const char *buf, size_t len, size_t max_depth, size_t *frame_len);

#define RESP_TYPE_MAP(X)                                                   \
    X(STRING,     '+', "string")                                          \
    X(ERROR,      '-', "error")                                           \
    X(INT,        ':', "integer")                                         \
    X(BULK,       '$', "bulk")                                            \
    X(NIL,        '_', "nil")      /* also $-1 and *-1 */                  \
    X(ARRAY,      '*', "array")                                           \
    X(DOUBLE,     ',', "double")                                          \
    X(BOOL,       '#', "boolean")                                         \
    X(BLOB_ERROR, '!', "blob-error")                                      \
    X(VERBATIM,   '=', "verbatim")                                        \
    X(BIGNUM,     '(', "big-number")                                      \
    X(MAP,        '%', "map")                                             \
    X(SET,        '~', "set")                                             \
    X(PUSH,       '>', "push")                                            \
    X(ATTR,       '|', "attribute")

typedef enum resp_type {
#define RESP_TYPE_ENUM(name, byte, text) RESP_##name,
    RESP_TYPE_MAP(RESP_TYPE_ENUM)
#undef RESP_TYPE_ENUM
} resp_type;

/* A static name for `t` ("bulk", "map", ...). */
const char *resp_type_name(resp_type t);

/* One reply.  Which fields mean something depends on `type`:
 *   STRING ERROR BULK BLOB_ERROR BIGNUM DOUBLE VERBATIM
 *                      s[0..len) (always NUL-terminated too; BIGNUM and DOUBLE
 *                      keep their text).  VERBATIM: s is the text after the
 *                      "txt:" prefix, whose 3 letters are in fmt.
 *   INT BOOL           i (BOOL: 1 or 0)
 *   DOUBLE             d as well
 *   ARRAY SET PUSH     elem[0..n)
 *   MAP ATTR           elem[0..n) alternating key, value: n = 2 * pairs
 *   NIL                nothing
 * attr is the RESP3 attribute that preceded this value, or NULL.
 * The whole tree is owned by its root; free it with resp_value_free(). */
typedef struct resp_value {
    resp_type type;
    int64_t i;
    double d;
    char *s;
    size_t len;
    char fmt[4];
    struct resp_value **elem;
    size_t n;
    struct resp_value *attr;
} resp_value;

/* Read one reply from buf[0..len): 0 with *out (the caller frees it) and
 * *consumed set; CAIRN_EAGAIN or CAIRN_EPROTO (as resp_scan_reply with
 * max_depth RESP_DEPTH_MAX) with *out = NULL. */
int resp_read_value(const char *buf, size_t len, resp_value **out, size_t *consumed);
/* Frees v and everything under it; NULL is fine. */
void resp_value_free(resp_value *v);

#endif
