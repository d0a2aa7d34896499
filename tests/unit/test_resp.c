/*
 * test_resp.c — lib/resp: the request parser, the reply scanner and the
 * reply reader.
 *
 * Covers: a table of requests (multibulk, binary-safe and empty bulks,
 * *0 / *-1, inline with quotes and every escape, every protocol error text,
 * every limit exactly at and one past its value, hostile headers), each fed
 * whole, one byte at a time and (as one pipeline) in random chunks into a
 * buffer that moves on every call, all giving the same argv; the default
 * limits at their real sizes; a big bulk and many small ones fed in chunks
 * with the parser's scan counter showing linear work; resp_parser_need;
 * reset and reuse after an error; zero-copy pointers; argv memory paid for
 * by data, not by counts; 100k garbage buffers that must only ever produce
 * 0 / EAGAIN / EPROTO (and the same answer whether fed whole or in pieces).
 * Replies: every RESP2/RESP3 type, nesting, attributes, every cut point of
 * every reply is EAGAIN, malformed replies, the depth limit, the tree
 * reader's fields.  Every case checks that memory is returned (and runs
 * under ASan in `make check-asan`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/mem.h"
#include "lib/resp.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct bytes {
    const char *p;
    size_t n;
} bytes;
#define B(lit) {(lit), sizeof(lit) - 1}

/* xorshift64*: a fixed seed makes every "random" case reproducible. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

/* What one parse produced, copied out so that runs can be compared. */
typedef struct outcome {
    int rc;
    size_t consumed;
    size_t at; /* bytes the parser had been given when it answered */
    char argv[512]; /* argv as "len:bytes" concatenated: binary-safe, comparable */
    size_t argv_len;
    char err[64];
} outcome;

static void record(const resp_parser *p, int rc, size_t consumed, size_t at, outcome *o)
{
    memset(o, 0, sizeof(*o));
    o->rc = rc;
    o->at = at;
    if (rc == 0) {
        o->consumed = consumed;
        for (size_t i = 0; i < p->argc; i++) {
            int w = snprintf(o->argv + o->argv_len, sizeof(o->argv) - o->argv_len, "%zu:",
                             p->argv[i].len);
            assert_true(w > 0 && (size_t)w + p->argv[i].len < sizeof(o->argv) - o->argv_len);
            o->argv_len += (size_t)w;
            memcpy(o->argv + o->argv_len, p->argv[i].p, p->argv[i].len);
            o->argv_len += p->argv[i].len;
        }
    }
    if (rc == CAIRN_EPROTO) {
        assert_non_null(p->err);
        snprintf(o->err, sizeof(o->err), "%s", p->err);
    }
}

/* Parse in[0..n) from a fresh allocation of exactly n bytes, so ASan sees
 * any read past the end. */
static int parse_copy(resp_parser *p, const char *in, size_t n, outcome *o)
{
    char *b = malloc(n ? n : 1);
    size_t consumed = 0;
    memcpy(b, in, n);
    int rc = resp_parse_request(p, b, n, &consumed);
    record(p, rc, consumed, n, o);
    free(b);
    return rc;
}

/* Feed in[0..n) in growing prefixes (steps of 1, or random 1..max_step when
 * seeded), each call from a new allocation: the buffer "moves" every time,
 * which catches any pointer the parser kept across calls.  Stops at the
 * first answer that is not EAGAIN. */
static void feed_pieces(resp_parser *p, const char *in, size_t n, uint64_t *seed,
                        size_t max_step, outcome *o)
{
    size_t have = 0;
    for (;;) {
        size_t step = seed ? 1 + rng_next(seed) % max_step : 1;
        have = have + step < n ? have + step : n;
        if (parse_copy(p, in, have, o) != CAIRN_EAGAIN || have == n) return;
    }
}

/* Append src[have..have+n) to *buf, doubling its capacity like a query
 * buffer: it moves now and then, as a real one does. */
static char *append(char *buf, size_t *cap, const char *src, size_t have, size_t n)
{
    if (have + n > *cap) {
        *cap = (have + n) * 2;
        buf = realloc(buf, *cap);
    }
    memcpy(buf + have, src + have, n);
    return buf;
}

static void assert_same(const outcome *a, const outcome *b)
{
    assert_int_equal(a->rc, b->rc);
    assert_int_equal(a->consumed, b->consumed);
    assert_int_equal(a->argv_len, b->argv_len);
    assert_memory_equal(a->argv, b->argv, a->argv_len);
    assert_string_equal(a->err, b->err);
}

/* ---- fixture ------------------------------------------------------------ */

typedef struct fx {
    resp_parser p;
    size_t mem0;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    f->mem0 = cairn_mem_used();
    resp_parser_init(&f->p, NULL);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    resp_parser_close(&f->p);
    size_t leaked = cairn_mem_used() - f->mem0;
    free(f);
    assert_int_equal(leaked, 0);
    return 0;
}

static void relimit(fx *f, const resp_limits *lim)
{
    resp_parser_close(&f->p);
    resp_parser_init(&f->p, lim && lim->max_inline ? lim : NULL);
}

/* ---- the request table -------------------------------------------------- */

/* Small limits, so that "at" and "one past" fit in a line of test data. */
#define SMALL {.max_bulk = 4, .max_args = 3, .max_inline = 8}
/* Room for big numbers, still short header lines. */
#define SHORTHDR {.max_bulk = 100000000, .max_args = 3, .max_inline = 8}

typedef struct req_case {
    const char *name;
    bytes in;
    int rc;
    bytes argv;       /* rc == 0: expected argv as "len:bytes" */
    const char *err;  /* rc == CAIRN_EPROTO */
    size_t consumed;  /* rc == 0; 0 means the whole input */
    size_t need;      /* rc == CAIRN_EAGAIN: resp_parser_need(), when nonzero */
    resp_limits lim;  /* zero: the defaults */
} req_case;

#define OK(nm, input, args) {.name = nm, .in = B(input), .rc = 0, .argv = B(args)}
#define OKL(nm, input, args, l) {.name = nm, .in = B(input), .rc = 0, .argv = B(args), .lim = l}
#define ERR(nm, input, text) {.name = nm, .in = B(input), .rc = CAIRN_EPROTO, .err = text}
#define ERRL(nm, input, text, l) {.name = nm, .in = B(input), .rc = CAIRN_EPROTO, .err = text, .lim = l}
#define MORE(nm, input) {.name = nm, .in = B(input), .rc = CAIRN_EAGAIN}
#define MOREL(nm, input, l) {.name = nm, .in = B(input), .rc = CAIRN_EAGAIN, .lim = l}

#define E_INLINE  "Protocol error: too big inline request"
#define E_QUOTES  "Protocol error: unbalanced quotes in request"
#define E_MBCOUNT "Protocol error: too big mbulk count string"
#define E_MBLEN   "Protocol error: invalid multibulk length"
#define E_BCOUNT  "Protocol error: too big bulk count string"
#define E_BLEN    "Protocol error: invalid bulk length"

static const req_case req_cases[] = {
    /* multibulk */
    OK("set_three_args", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n", "3:SET1:k1:v"),
    OK("bulk_with_nul_and_crlf_inside", "*2\r\n$3\r\na\0b\r\n$4\r\n\r\n\r\n\r\n", "3:a\0b4:\r\n\r\n"),
    OK("empty_bulk", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", "3:GET0:"),
    OK("count_zero_is_empty_request", "*0\r\n", ""),
    OK("count_minus_one_is_empty_request", "*-1\r\n", ""),
    OK("count_negative_is_empty_request", "*-5\r\n", ""),
    OK("two_bytes_after_bulk_skipped_unchecked", "*1\r\n$4\r\nPINGXY", "4:PING"),
    OK("byte_after_header_cr_skipped_unchecked", "*1\rX$4\rYPING\r\n", "4:PING"),
    OKL("count_of_max_args_accepted", "*3\r\n$1\r\na\r\n$1\r\nb\r\n$0\r\n\r\n", "1:a1:b0:", SMALL),
    OKL("bulk_at_max_bulk_accepted", "*1\r\n$4\r\nabcd\r\n", "4:abcd", SMALL),
    OKL("count_header_at_max_inline_accepted", "*-100000\r\n", "", SHORTHDR),
    /* inline */
    OK("inline_crlf", "PING\r\n", "4:PING"),
    OK("inline_lf_only", "PING\n", "4:PING"),
    OK("inline_words", "set k v\n", "3:set1:k1:v"),
    OK("inline_runs_of_blanks", "  a \t b  \r\n", "1:a1:b"),
    OK("inline_empty_crlf", "\r\n", ""),
    OK("inline_empty_lf", "\n", ""),
    OK("inline_only_blanks", " \t \r\n", ""),
    OK("inline_double_and_single_quotes", "SET \"a b\" 'c d'\r\n", "3:SET3:a b3:c d"),
    OK("inline_every_double_quote_escape", "ECHO \"\\x41\\n\\r\\t\\b\\a\\\\\\\"z\"\r\n",
       "4:ECHO9:A\n\r\t\b\a\\\"z"),
    OK("inline_hex_escape_uppercase_digits", "ECHO \"\\x4a\\x4A\"\n", "4:ECHO2:JJ"),
    OK("inline_hex_escape_to_nul", "ECHO \"\\x00\"\n", "4:ECHO1:\0"),
    OK("inline_short_hex_escape_is_literal_x", "ECHO \"\\x4\"\r\n", "4:ECHO2:x4"),
    OK("inline_bad_hex_escape_is_literal_x", "ECHO \"\\xzz\"\r\n", "4:ECHO3:xzz"),
    OK("inline_capital_x_is_not_hex", "ECHO \"\\X41\"\r\n", "4:ECHO3:X41"),
    OK("inline_unknown_escape_is_the_char", "ECHO \"\\q\"\r\n", "4:ECHO1:q"),
    OK("inline_single_quote_escape", "ECHO 'it\\'s'\r\n", "4:ECHO4:it's"),
    OK("inline_single_quotes_keep_backslash_n", "ECHO 'a\\nb'\r\n", "4:ECHO4:a\\nb"),
    OK("inline_quote_mid_word_joins", "ECHO a\"b c\"\r\n", "4:ECHO4:ab c"),
    OK("inline_empty_quotes_are_an_arg", "ECHO \"\" ''\r\n", "4:ECHO0:0:"),
    OK("inline_tab_after_closing_quote", "ECHO \"a\"\tb\r\n", "4:ECHO1:a1:b"),
    OK("inline_vertical_tab_skipped_between_words", "ECHO \vab\r\n", "4:ECHO2:ab"),
    OK("inline_vertical_tab_kept_inside_word", "ECHO a\vb\r\n", "4:ECHO3:a\vb"),
    OK("inline_cr_inside_line_splits", "ECHO a\rb\r\n", "4:ECHO1:a1:b"),
    OK("inline_nul_is_data", "EC\0HO x\n", "5:EC\0HO1:x"),
    OK("inline_star_not_first_is_inline", " *1\r\n", "2:*1"),
    OK("inline_dollar_first_is_inline", "$x\r\n", "2:$x"),
    OKL("inline_at_max_inline_with_crlf", "12345678\r\n", "8:12345678", SMALL),
    OKL("inline_at_max_inline_with_lf", "12345678\n", "8:12345678", SMALL),
    ERR("inline_unbalanced_double", "ECHO \"abc\r\n", E_QUOTES),
    ERR("inline_unbalanced_single", "ECHO 'abc\r\n", E_QUOTES),
    ERR("inline_escaped_closing_quote", "ECHO \"a\\\"\r\n", E_QUOTES),
    ERR("inline_backslash_at_end_in_quotes", "ECHO \"a\\\r\n", E_QUOTES),
    ERR("inline_text_after_closing_double", "ECHO \"a\"b\r\n", E_QUOTES),
    ERR("inline_text_after_closing_single", "ECHO 'a'b\r\n", E_QUOTES),
    ERRL("inline_past_max_inline_with_newline", "123456789\n", E_INLINE, SMALL),
    ERRL("inline_past_max_inline_with_crlf", "123456789\r\n", E_INLINE, SMALL),
    ERRL("inline_past_max_inline_unterminated", "123456789", E_INLINE, SMALL),
    ERRL("inline_max_plus_lone_cr_then_text", "12345678\rX", E_INLINE, SMALL),
    MOREL("inline_at_max_inline_unterminated", "12345678", SMALL),
    MOREL("inline_at_max_inline_cr_waits_for_lf", "12345678\r", SMALL),
    /* multibulk count errors */
    ERR("count_not_a_number", "*abc\r\n", E_MBLEN),
    ERR("count_empty", "*\r\n", E_MBLEN),
    ERR("count_plus_sign", "*+1\r\n", E_MBLEN),
    ERR("count_leading_zero", "*01\r\n", E_MBLEN),
    ERR("count_minus_zero", "*-0\r\n", E_MBLEN),
    ERR("count_overflows_int64", "*99999999999999999999\r\n", E_MBLEN),
    ERR("count_trailing_space", "*1 \r\n", E_MBLEN),
    ERR("count_with_nul", "*1\0\r\n", E_MBLEN),
    ERR("count_one_past_max_args", "*1048577\r\n", E_MBLEN),
    ERRL("count_one_past_small_max_args", "*4\r\n", E_MBLEN, SMALL),
    ERRL("count_header_past_max_inline", "*-1000000\r\n", E_MBCOUNT, SHORTHDR),
    ERRL("count_header_past_max_inline_unterminated", "*123456789", E_MBCOUNT, SHORTHDR),
    MOREL("count_header_at_max_inline_unterminated", "*1234567", SHORTHDR),
    /* bulk header errors */
    ERR("expected_dollar_got_letter", "*1\r\nX\r\n", "Protocol error: expected '$', got 'X'"),
    ERR("expected_dollar_got_colon", "*1\r\n:1\r\n", "Protocol error: expected '$', got ':'"),
    ERR("expected_dollar_got_cr_shows_space", "*1\r\n\r\n", "Protocol error: expected '$', got ' '"),
    ERR("expected_dollar_got_lf_shows_space", "*1\r\n\n\r\n", "Protocol error: expected '$', got ' '"),
    ERR("expected_dollar_got_nul_shows_space", "*1\r\n\0\r\n", "Protocol error: expected '$', got ' '"),
    ERR("expected_dollar_after_skipped_byte", "*1\rX*1\r\n$4\r\nPING\r\n",
        "Protocol error: expected '$', got '*'"),
    ERR("expected_dollar_on_second_arg", "*2\r\n$1\r\na\r\n+b\r\n",
        "Protocol error: expected '$', got '+'"),
    ERR("bulk_length_minus_one", "*1\r\n$-1\r\n", E_BLEN),
    ERR("bulk_length_garbage", "*1\r\n$abc\r\n", E_BLEN),
    ERR("bulk_length_empty", "*1\r\n$\r\n", E_BLEN),
    ERR("bulk_length_plus_sign", "*1\r\n$+4\r\nPING\r\n", E_BLEN),
    ERR("bulk_length_leading_zero", "*1\r\n$04\r\nPING\r\n", E_BLEN),
    ERR("bulk_length_overflows_int64", "*1\r\n$99999999999999999999\r\n", E_BLEN),
    ERR("bulk_length_int64_min", "*1\r\n$-9223372036854775808\r\n", E_BLEN),
    ERR("bulk_length_one_past_max_bulk", "*1\r\n$536870913\r\n", E_BLEN),
    ERRL("bulk_length_one_past_small_max_bulk", "*1\r\n$5\r\nabcde\r\n", E_BLEN, SMALL),
    ERRL("bulk_header_past_max_inline", "*1\r\n$10000000\r\n", E_BCOUNT, SHORTHDR),
    ERRL("bulk_header_past_max_inline_unterminated", "*1\r\n$123456789", E_BCOUNT, SHORTHDR),
    /* incomplete */
    MORE("nothing", ""),
    MORE("star_only", "*"),
    MORE("count_cr_without_next_byte", "*1\r"),
    MORE("bulk_header_partial", "*1\r\n$"),
    MORE("bulk_payload_partial", "*1\r\n$3\r\nab"),
    MORE("bulk_payload_without_crlf", "*1\r\n$3\r\nabc"),
    MORE("bulk_payload_with_half_crlf", "*1\r\n$3\r\nabc\r"),
    MORE("inline_without_newline", "PING"),
    MORE("inline_cr_without_lf", "PING\r"),
    MORE("count_at_max_args_waits_for_data", "*1048576\r\n"),
    {.name = "bulk_at_max_bulk_waits_for_data", .in = B("*1\r\n$536870912\r\n"),
     .rc = CAIRN_EAGAIN, .need = 536870914},
    {.name = "bulk_header_at_max_inline_waits", .in = B("*1\r\n$1000000\r\n"),
     .rc = CAIRN_EAGAIN, .need = 1000002, .lim = SHORTHDR},
    MORE("huge_count_waits_without_allocating", "*1048576\r\n$1\r\nx\r\n"),
};

/* Fails naming the case, so a table failure says which row. */
static void check_case(const req_case *c, const outcome *o)
{
    size_t want = c->consumed ? c->consumed : c->in.n;
    if (o->rc != c->rc) fail_msg("case %s: rc %d, want %d", c->name, o->rc, c->rc);
    if (c->rc == 0 && (o->consumed != want || o->argv_len != c->argv.n ||
                       memcmp(o->argv, c->argv.p, c->argv.n) != 0))
        fail_msg("case %s: consumed %zu (want %zu), argv \"%.*s\"", c->name, o->consumed, want,
                 (int)o->argv_len, o->argv);
    if (c->rc == CAIRN_EPROTO && strcmp(o->err, c->err) != 0)
        fail_msg("case %s: err \"%s\"", c->name, o->err);
}

static void request_table_fed_whole(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const req_case *c = &req_cases[i];
        outcome o;
        relimit(f, &c->lim);
        parse_copy(&f->p, c->in.p, c->in.n, &o);
        check_case(c, &o);
        if (c->need) assert_int_equal(resp_parser_need(&f->p), c->need);
    }
}

static void request_table_fed_one_byte_at_a_time(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const req_case *c = &req_cases[i];
        outcome o;
        relimit(f, &c->lim);
        feed_pieces(&f->p, c->in.p, c->in.n, NULL, 1, &o);
        check_case(c, &o);
        /* A complete request is not answered before its last byte. */
        if (c->rc == 0) assert_int_equal(o.at, o.consumed);
        if (c->need) assert_int_equal(resp_parser_need(&f->p), c->need);
    }
}

/* Every default-limit request of the table, back to back, cut at random
 * places: the same argv, in order. */
static void request_pipeline_fed_in_random_chunks(void **state)
{
    fx *f = *state;
    char *all = NULL;
    size_t len = 0, expected = 0;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        const req_case *c = &req_cases[i];
        if (c->rc != 0 || c->lim.max_inline) continue;
        all = realloc(all, len + c->in.n);
        memcpy(all + len, c->in.p, c->in.n);
        len += c->in.n;
        expected++;
    }
    for (uint64_t round = 0; round < 50; round++) {
        uint64_t seed = 0x9e3779b97f4a7c15ULL + round;
        size_t start = 0, k = 0;
        for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
            const req_case *c = &req_cases[i];
            if (c->rc != 0 || c->lim.max_inline) continue;
            outcome o;
            feed_pieces(&f->p, all + start, len - start, &seed, 1 + round % 40, &o);
            check_case(c, &o);
            start += o.consumed;
            k++;
        }
        assert_int_equal(k, expected);
        assert_int_equal(start, len);
    }
    free(all);
}

static void pipeline_in_one_buffer_parses_each_request(void **state)
{
    fx *f = *state;
    static const char in[] = "PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nSET a \"b c\"\n*0\r\n*1\r\n$2\r\nhi";
    static const char *const want[] = {"4:PING", "3:GET1:k", "3:SET1:a3:b c", ""};
    size_t start = 0, consumed;
    for (size_t i = 0; i < 4; i++) {
        outcome o;
        assert_int_equal(resp_parse_request(&f->p, in + start, sizeof(in) - 1 - start, &consumed), 0);
        record(&f->p, 0, consumed, 0, &o);
        assert_int_equal(o.argv_len, strlen(want[i]));
        assert_memory_equal(o.argv, want[i], o.argv_len);
        start += consumed;
    }
    assert_int_equal(resp_parse_request(&f->p, in + start, sizeof(in) - 1 - start, &consumed),
                     CAIRN_EAGAIN);
    assert_int_equal(resp_parser_need(&f->p), 2);
}

/* ---- default limits at their real size ----------------------------------- */

static int parse_heap(resp_parser *p, const char *prefix, char fill, size_t nfill,
                      const char *suffix, const char **err)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), consumed;
    char *b = malloc(pl + nfill + sl);
    memcpy(b, prefix, pl);
    memset(b + pl, fill, nfill);
    memcpy(b + pl + nfill, suffix, sl);
    int rc = resp_parse_request(p, b, pl + nfill + sl, &consumed);
    *err = rc == CAIRN_EPROTO ? p->err : NULL;
    free(b);
    resp_parser_reset(p);
    return rc;
}

static void default_limits_exactly_at_and_one_past(void **state)
{
    fx *f = *state;
    const size_t max = RESP_MAX_INLINE_DEFAULT;
    const char *err;

    /* inline: 64 KB of content is fine with either line ending */
    assert_int_equal(parse_heap(&f->p, "", 'a', max, "", &err), CAIRN_EAGAIN);
    assert_int_equal(parse_heap(&f->p, "", 'a', max, "\r\n", &err), 0);
    assert_int_equal(parse_heap(&f->p, "", 'a', max, "\n", &err), 0);
    assert_int_equal(parse_heap(&f->p, "", 'a', max + 1, "", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_INLINE);
    assert_int_equal(parse_heap(&f->p, "", 'a', max + 1, "\r\n", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_INLINE);

    /* "*N": the '\r' may come max bytes after the '*' */
    assert_int_equal(parse_heap(&f->p, "*", '1', max - 1, "", &err), CAIRN_EAGAIN);
    assert_int_equal(parse_heap(&f->p, "*", '1', max - 1, "\r\n", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_MBLEN);
    assert_int_equal(parse_heap(&f->p, "*", '1', max, "", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_MBCOUNT);

    /* "$N" likewise */
    assert_int_equal(parse_heap(&f->p, "*1\r\n$", '1', max - 1, "", &err), CAIRN_EAGAIN);
    assert_int_equal(parse_heap(&f->p, "*1\r\n$", '1', max - 1, "\r\n", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_BLEN);
    assert_int_equal(parse_heap(&f->p, "*1\r\n$", '1', max, "", &err), CAIRN_EPROTO);
    assert_string_equal(err, E_BCOUNT);

    /* max_bulk and max_args are in the table (512 MB, 1048576) */
}

/* ---- linear work, need(), memory ------------------------------------------ */

static void big_bulk_in_chunks_is_never_rescanned(void **state)
{
    fx *f = *state;
    const size_t big = (size_t)8 << 20, chunk = 16 * 1024;
    static const char head[] = "*2\r\n$3\r\nSET\r\n$8388608\r\n";
    const size_t total = sizeof(head) - 1 + big + 2;
    char *src = malloc(total), *buf = NULL;
    size_t have = 0, cap = 0, consumed = 0, calls = 0;
    int rc = CAIRN_EAGAIN;

    memcpy(src, head, sizeof(head) - 1);
    for (size_t i = 0; i < big; i++) src[sizeof(head) - 1 + i] = (char)('a' + i % 26);
    memcpy(src + total - 2, "\r\n", 2);

    while (rc == CAIRN_EAGAIN) {
        size_t n = have + chunk < total ? chunk : total - have;
        buf = append(buf, &cap, src, have, n);
        have += n;
        rc = resp_parse_request(&f->p, buf, have, &consumed);
        calls++;
        /* once the header is in, the parser knows exactly what is missing */
        if (rc == CAIRN_EAGAIN) assert_int_equal(resp_parser_need(&f->p), total - have);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(consumed, total);
    assert_int_equal(f->p.argc, 2);
    assert_int_equal(f->p.argv[1].len, big);
    assert_ptr_equal(f->p.argv[1].p, buf + sizeof(head) - 1); /* zero-copy */
    assert_memory_equal(f->p.argv[1].p, src + sizeof(head) - 1, big);
    /* Only the two header lines were ever searched; the payload never. */
    assert_true(f->p.examined < 2 * (sizeof(head) - 1));
    assert_true(calls > 500);
    free(buf);
    free(src);
}

static void many_small_args_in_chunks_scan_each_byte_once(void **state)
{
    fx *f = *state;
    const size_t nargs = 200000;
    char *src = malloc(16 + nargs * 7), *buf = NULL;
    size_t total = (size_t)sprintf(src, "*%zu\r\n", nargs), have = 0, cap = 0, consumed = 0;
    int rc = CAIRN_EAGAIN;

    for (size_t i = 0; i < nargs; i++) memcpy(src + total + 7 * i, "$1\r\nx\r\n", 7);
    total += 7 * nargs;
    while (rc == CAIRN_EAGAIN) {
        size_t n = have + 5 < total ? 5 : total - have; /* 5: never aligned with an arg */
        buf = append(buf, &cap, src, have, n);
        have += n;
        rc = resp_parse_request(&f->p, buf, have, &consumed);
    }
    assert_int_equal(rc, 0);
    assert_int_equal(consumed, total);
    assert_int_equal(f->p.argc, nargs);
    assert_memory_equal(f->p.argv[nargs - 1].p, "x", 1);
    /* Restarting from the request start on each of the ~280k calls would
     * have searched ~10^11 bytes. */
    assert_true(f->p.examined < 2 * total);

    /* The next request releases the 200k-slot argv: one huge request does
     * not pin its memory for the connection's lifetime. */
    size_t before = cairn_mem_used();
    assert_int_equal(resp_parse_request(&f->p, "PING\r\n", 6, &consumed), 0);
    assert_true(cairn_mem_used() + nargs * sizeof(resp_arg) <= before);
    free(buf);
    free(src);
}

/* A 64 KB inline line (or "*N" header) trickling in is searched for its
 * newline once, not once per piece. */
static void long_line_in_small_pieces_searched_once(void **state)
{
    fx *f = *state;
    const size_t n = RESP_MAX_INLINE_DEFAULT;
    char *src = malloc(n + 2);
    size_t consumed = 0;
    int rc = CAIRN_EAGAIN;
    memset(src, 'a', n);
    memcpy(src + n, "\r\n", 2);
    for (size_t have = 100; rc == CAIRN_EAGAIN; have += 100)
        rc = resp_parse_request(&f->p, src, have < n + 2 ? have : n + 2, &consumed);
    assert_int_equal(rc, 0);
    assert_int_equal(f->p.argc, 1);
    assert_int_equal(f->p.argv[0].len, n);
    assert_true(f->p.examined < 2 * (n + 2)); /* rescanning: ~2.1e7 */

    memset(src, '1', n);
    src[0] = '*';
    rc = CAIRN_EAGAIN;
    uint64_t before = f->p.examined;
    for (size_t have = 100; rc == CAIRN_EAGAIN && have <= n; have += 100)
        rc = resp_parse_request(&f->p, src, have, &consumed);
    assert_int_equal(rc, CAIRN_EAGAIN);
    assert_true(f->p.examined - before <= n);

    /* a long quoted word is rebuilt in scratch, released by the next request */
    resp_parser_reset(&f->p);
    memset(src, 'b', n);
    src[0] = src[n - 1] = '"';
    assert_int_equal(resp_parse_request(&f->p, src, n + 2, &consumed), 0);
    assert_int_equal(f->p.argv[0].len, n - 2);
    size_t held = cairn_mem_used();
    assert_int_equal(resp_parse_request(&f->p, "PING\r\n", 6, &consumed), 0);
    assert_true(cairn_mem_used() + n - 2 <= held);
    free(src);
}

static void huge_count_allocates_for_data_not_for_the_claim(void **state)
{
    fx *f = *state;
    size_t consumed, before = cairn_mem_used();
    assert_int_equal(resp_parse_request(&f->p, "*1048576\r\n$1\r\nx\r\n", 17, &consumed),
                     CAIRN_EAGAIN);
    assert_true(cairn_mem_used() - before < 64 * 1024);
}

static void reset_forgets_a_partial_request(void **state)
{
    fx *f = *state;
    outcome o;
    assert_int_equal(parse_copy(&f->p, "*2\r\n$3\r\nGET\r\n", 13, &o), CAIRN_EAGAIN);
    resp_parser_reset(&f->p);
    assert_int_equal(resp_parser_need(&f->p), 0);
    assert_int_equal(parse_copy(&f->p, "PING\r\n", 6, &o), 0);
    assert_memory_equal(o.argv, "4:PING", 6);
}

static void parser_usable_again_after_protocol_error(void **state)
{
    fx *f = *state;
    outcome o;
    assert_int_equal(parse_copy(&f->p, "*2\r\n$1\r\na\r\n$x\r\n", 15, &o), CAIRN_EPROTO);
    assert_string_equal(o.err, E_BLEN);
    assert_int_equal(f->p.argc, 0);
    assert_int_equal(parse_copy(&f->p, "*1\r\n$4\r\nPING\r\n", 14, &o), 0);
    assert_memory_equal(o.argv, "4:PING", 6);
    assert_null(f->p.err);
}

static void inline_plain_words_point_into_buffer_quoted_ones_do_not(void **state)
{
    fx *f = *state;
    static const char in[] = "SET key \"v\\x41l\" plain\r\n";
    size_t consumed;
    assert_int_equal(resp_parse_request(&f->p, in, sizeof(in) - 1, &consumed), 0);
    assert_int_equal(f->p.argc, 4);
    assert_ptr_equal(f->p.argv[0].p, in);
    assert_ptr_equal(f->p.argv[1].p, in + 4);
    assert_true(f->p.argv[2].p < in || f->p.argv[2].p >= in + sizeof(in));
    assert_memory_equal(f->p.argv[2].p, "vAl", 3);
    assert_ptr_equal(f->p.argv[3].p, in + 17);
}

/* ---- hostile input -------------------------------------------------------- */

/* Protocol-shaped pieces, so random buffers reach deep into every parser. */
static const char *const shards[] = {
    "*", "$", "\r\n", "\r", "\n", "0", "1", "2", "3", "-1", "-", "+", "10", "4",
    "99999999999999999999", "9223372036854775807", "\"", "'", "\\", "\\x4", "\\x41", " ",
    "\t", "a", "PING", "\0", "%", "~", ">", "|", "_", ",", "#t", "!", "=", "(", ":",
    "txt:", "1.5", "inf", "?", "\v",
};

static size_t random_garbage(uint64_t *seed, char *out, size_t cap)
{
    size_t n = 0, pieces = rng_next(seed) % 16;
    for (size_t i = 0; i < pieces; i++) {
        if (rng_next(seed) % 8 == 0) {
            if (n < cap) out[n++] = (char)rng_next(seed);
            continue;
        }
        const char *s = shards[rng_next(seed) % (sizeof(shards) / sizeof(shards[0]))];
        size_t sl = s[0] ? strlen(s) : 1; /* the "\0" shard is one NUL byte */
        if (n + sl > cap) break;
        memcpy(out + n, s, sl);
        n += sl;
    }
    return n;
}

static void random_garbage_only_ever_parses_waits_or_errs(void **state)
{
    fx *f = *state;
    static const resp_limits small = SMALL;
    uint64_t seed = 42;
    char in[128];

    for (int iter = 0; iter < 100000; iter++) {
        size_t n = random_garbage(&seed, in, sizeof(in));
        relimit(f, iter % 2 ? &small : NULL);

        /* the parser: consume request after request */
        size_t start = 0;
        outcome first;
        int rc;
        memset(&first, 0, sizeof(first));
        bool have_first = false;
        do {
            outcome o;
            rc = parse_copy(&f->p, in + start, n - start, &o);
            assert_true(rc == 0 || rc == CAIRN_EAGAIN || rc == CAIRN_EPROTO);
            if (rc == 0) {
                assert_true(o.consumed > 0 && o.consumed <= n - start);
                start += o.consumed;
            }
            if (rc == CAIRN_EPROTO) assert_memory_equal(o.err, "Protocol error: ", 16);
            if (!have_first) first = o, have_first = true;
        } while (rc == 0);

        /* ... and its answer never depends on how the bytes were split */
        if (iter % 10 == 0) {
            outcome pieces;
            resp_parser_reset(&f->p);
            feed_pieces(&f->p, in, n, NULL, 1, &pieces);
            assert_same(&first, &pieces);
        }

        /* the scanner and the reader agree, and stay inside the buffer */
        size_t flen = 0, consumed = 0;
        resp_value *v;
        char *b = malloc(n ? n : 1);
        memcpy(b, in, n);
        int src = resp_scan_reply(b, n, RESP_DEPTH_MAX, &flen);
        int rrc = resp_read_value(b, n, &v, &consumed);
        assert_true(src == 0 || src == CAIRN_EAGAIN || src == CAIRN_EPROTO);
        assert_int_equal(rrc, src);
        if (src == 0) {
            assert_true(flen > 0 && flen <= n);
            assert_int_equal(consumed, flen);
            assert_non_null(v);
        } else {
            assert_null(v);
        }
        resp_value_free(v);
        free(b);
    }
}

/* ---- reply scanner -------------------------------------------------------- */

static const bytes good_replies[] = {
    B("+OK\r\n"), B("+\r\n"), B("-ERR bad thing\r\n"), B(":0\r\n"), B(":-42\r\n"),
    B(":9223372036854775807\r\n"), B("$5\r\nhello\r\n"), B("$0\r\n\r\n"),
    B("$4\r\na\r\nb\r\n"), B("$3\r\na\0b\r\n"), B("$-1\r\n"), B("*-1\r\n"), B("*0\r\n"),
    B("*2\r\n$1\r\na\r\n:1\r\n"), B("*2\r\n*1\r\n+a\r\n*0\r\n"), B("*3\r\n*1\r\n*1\r\n:1\r\n$-1\r\n_\r\n"),
    B("_\r\n"), B(",1.5\r\n"), B(",-2e10\r\n"), B(",inf\r\n"), B(",-inf\r\n"), B(",nan\r\n"),
    B("#t\r\n"), B("#f\r\n"), B("!3\r\nerr\r\n"), B("=8\r\ntxt:abcd\r\n"), B("=4\r\nmkd:\r\n"),
    B("(123456789012345678901234567890\r\n"), B("(-5\r\n"), B("%1\r\n+k\r\n:1\r\n"),
    B("%0\r\n"), B("~2\r\n+a\r\n+b\r\n"), B(">2\r\n+message\r\n+x\r\n"),
    B("|1\r\n+ttl\r\n:3\r\n+OK\r\n"), B("*1\r\n|1\r\n+a\r\n+b\r\n:7\r\n"),
    B("|0\r\n|1\r\n+a\r\n+b\r\n*2\r\n%1\r\n+f\r\n~1\r\n#t\r\n,0.5\r\n"),
};

static void scan_every_reply_type_whole_and_with_a_follower(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_replies) / sizeof(good_replies[0]); i++) {
        const bytes *r = &good_replies[i];
        size_t flen = 0;
        char *b = malloc(r->n + 6);
        memcpy(b, r->p, r->n);
        if (resp_scan_reply(b, r->n, RESP_DEPTH_MAX, &flen) != 0 || flen != r->n)
            fail_msg("good reply %zu not scanned whole", i);
        memcpy(b + r->n, "+NEXT\r", 6);
        assert_int_equal(resp_scan_reply(b, r->n + 6, RESP_DEPTH_MAX, &flen), 0);
        assert_int_equal(flen, r->n);
        free(b);
    }
}

static void scan_every_cut_point_of_every_reply_is_incomplete(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(good_replies) / sizeof(good_replies[0]); i++) {
        const bytes *r = &good_replies[i];
        for (size_t cut = 0; cut < r->n; cut++) {
            char *b = malloc(cut ? cut : 1);
            size_t flen = 0;
            resp_value *v = (resp_value *)1;
            memcpy(b, r->p, cut);
            if (resp_scan_reply(b, cut, RESP_DEPTH_MAX, &flen) != CAIRN_EAGAIN)
                fail_msg("good reply %zu cut at %zu is not EAGAIN", i, cut);
            assert_int_equal(resp_read_value(b, cut, &v, &flen), CAIRN_EAGAIN);
            assert_null(v);
            free(b);
        }
    }
}

static void scan_rejects_malformed_replies(void **state)
{
    (void)state;
    static const bytes bad[] = {
        B("?\r\n"), B("x\r\n"), B("\r\n"), B(":abc\r\n"), B(":\r\n"), B(":+1\r\n"), B(":01\r\n"),
        B("$-2\r\n"), B("$abc\r\n"), B("$\r\n"), B("$3\r\nabcXY"), B("$3\r\nabc\rX"), B("$3\r\nabcd"),
        B("+OK\rX"), B("+OK\r\r\n"), B("_x\r\n"), B("_ "), B("#x\r\n"), B("#tt\r\n"), B("#tr"), B("#\r\n"),
        B(",\r\n"), B(", 1\r\n"), B(",1.5x\r\n"), B("(\r\n"), B("(-\r\n"), B("(12a\r\n"),
        B("%-1\r\n"), B("~-1\r\n"), B(">-1\r\n"), B("|-1\r\n"), B("!-1\r\n"), B("=-1\r\n"),
        B("=3\r\nabc\r\n"), B("=1\r\na\r\n:1\r\n"), B("=5\r\nabcde\r\n"), B("*2\r\n+a\r\n?\r\n"),
        B("$?\r\n"), B("*?\r\n"), B("$123456789012345678901"), B("*1234567890123456789012\r\n"),
        B("%4611686018427387904\r\n"), B("*1\r\n:1\rX"),
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t flen = 0;
        resp_value *v = (resp_value *)1;
        char *b = malloc(bad[i].n);
        memcpy(b, bad[i].p, bad[i].n);
        if (resp_scan_reply(b, bad[i].n, RESP_DEPTH_MAX, &flen) != CAIRN_EPROTO)
            fail_msg("bad reply %zu accepted or awaited", i);
        assert_int_equal(resp_read_value(b, bad[i].n, &v, &flen), CAIRN_EPROTO);
        assert_null(v);
        free(b);
    }
}

static char *nested(size_t levels, size_t *len)
{
    char *b = malloc(levels * 4 + 4);
    for (size_t i = 0; i < levels; i++) memcpy(b + 4 * i, "*1\r\n", 4);
    memcpy(b + 4 * levels, ":1\r\n", 4);
    *len = levels * 4 + 4;
    return b;
}

static void scan_depth_exactly_at_and_one_past_the_limit(void **state)
{
    (void)state;
    size_t len, flen;
    char *b;

    b = nested(5, &len);
    assert_int_equal(resp_scan_reply(b, len, 5, &flen), 0);
    assert_int_equal(flen, len);
    assert_int_equal(resp_scan_reply(b, len, 4, &flen), CAIRN_EPROTO);
    free(b);

    assert_int_equal(resp_scan_reply(":1\r\n", 4, 0, &flen), 0);
    assert_int_equal(resp_scan_reply("*0\r\n", 4, 0, &flen), CAIRN_EPROTO);
    assert_int_equal(resp_scan_reply("|0\r\n:1\r\n", 8, 0, &flen), CAIRN_EPROTO);

    /* any larger max_depth is clamped to what the scanner can track */
    b = nested(RESP_DEPTH_MAX, &len);
    assert_int_equal(resp_scan_reply(b, len, SIZE_MAX, &flen), 0);
    free(b);
    b = nested(RESP_DEPTH_MAX + 1, &len);
    assert_int_equal(resp_scan_reply(b, len, SIZE_MAX, &flen), CAIRN_EPROTO);
    free(b);

    /* a million levels: rejected at the limit, without recursion */
    b = nested(1000000, &len);
    assert_int_equal(resp_scan_reply(b, len, SIZE_MAX, &flen), CAIRN_EPROTO);
    resp_value *v;
    assert_int_equal(resp_read_value(b, len, &v, &flen), CAIRN_EPROTO);
    free(b);
}

static void scan_huge_claimed_sizes_wait_for_data(void **state)
{
    (void)state;
    size_t flen;
    assert_int_equal(resp_scan_reply("*9223372036854775807\r\n:1\r\n", 26, 8, &flen), CAIRN_EAGAIN);
    assert_int_equal(resp_scan_reply("$9223372036854775807\r\nabc", 25, 8, &flen), CAIRN_EAGAIN);
    assert_int_equal(resp_scan_reply("%4611686018427387903\r\n", 22, 8, &flen), CAIRN_EAGAIN);
}

/* ---- reply reader --------------------------------------------------------- */

static resp_value *read_ok(const char *s, size_t n)
{
    resp_value *v = NULL;
    size_t consumed = 0;
    assert_int_equal(resp_read_value(s, n, &v, &consumed), 0);
    assert_int_equal(consumed, n);
    assert_non_null(v);
    return v;
}
#define READ(lit) read_ok(lit, sizeof(lit) - 1)

static void assert_str(const resp_value *v, resp_type t, const char *s, size_t n)
{
    assert_int_equal(v->type, t);
    assert_int_equal(v->len, n);
    assert_memory_equal(v->s, s, n);
    assert_int_equal(v->s[n], '\0');
}

static void read_scalars_fill_the_right_fields(void **state)
{
    (void)state;
    resp_value *v;

    v = READ("+OK\r\n");
    assert_str(v, RESP_STRING, "OK", 2);
    resp_value_free(v);
    v = READ("-ERR x\r\n");
    assert_str(v, RESP_ERROR, "ERR x", 5);
    resp_value_free(v);
    v = READ("$3\r\na\0b\r\n");
    assert_str(v, RESP_BULK, "a\0b", 3);
    resp_value_free(v);
    v = READ("$0\r\n\r\n");
    assert_str(v, RESP_BULK, "", 0);
    resp_value_free(v);
    v = READ("!4\r\noops\r\n");
    assert_str(v, RESP_BLOB_ERROR, "oops", 4);
    resp_value_free(v);
    v = READ("(-123456789012345678901\r\n");
    assert_str(v, RESP_BIGNUM, "-123456789012345678901", 22);
    resp_value_free(v);

    v = READ("=9\r\ntxt:hello\r\n");
    assert_str(v, RESP_VERBATIM, "hello", 5);
    assert_string_equal(v->fmt, "txt");
    resp_value_free(v);

    v = READ(":-9223372036854775808\r\n");
    assert_int_equal(v->type, RESP_INT);
    assert_true(v->i == INT64_MIN);
    resp_value_free(v);

    v = READ(",2.5\r\n");
    assert_str(v, RESP_DOUBLE, "2.5", 3);
    assert_true(v->d == 2.5);
    resp_value_free(v);

    v = READ("#t\r\n");
    assert_int_equal(v->type, RESP_BOOL);
    assert_int_equal(v->i, 1);
    resp_value_free(v);
    v = READ("#f\r\n");
    assert_int_equal(v->i, 0);
    resp_value_free(v);

    /* the three spellings of nothing are one type */
    v = READ("_\r\n");
    assert_int_equal(v->type, RESP_NIL);
    assert_null(v->s);
    resp_value_free(v);
    v = READ("$-1\r\n");
    assert_int_equal(v->type, RESP_NIL);
    resp_value_free(v);
    v = READ("*-1\r\n");
    assert_int_equal(v->type, RESP_NIL);
    assert_null(v->elem);
    resp_value_free(v);
}

static void read_nested_aggregates_and_attributes(void **state)
{
    (void)state;
    resp_value *v = READ("*3\r\n:1\r\n*2\r\n+a\r\n$-1\r\n%1\r\n+k\r\n~1\r\n#t\r\n");
    assert_int_equal(v->type, RESP_ARRAY);
    assert_int_equal(v->n, 3);
    assert_int_equal(v->elem[0]->i, 1);
    assert_int_equal(v->elem[1]->type, RESP_ARRAY);
    assert_str(v->elem[1]->elem[0], RESP_STRING, "a", 1);
    assert_int_equal(v->elem[1]->elem[1]->type, RESP_NIL);
    assert_int_equal(v->elem[2]->type, RESP_MAP);
    assert_int_equal(v->elem[2]->n, 2); /* key, value */
    assert_str(v->elem[2]->elem[0], RESP_STRING, "k", 1);
    assert_int_equal(v->elem[2]->elem[1]->type, RESP_SET);
    assert_int_equal(v->elem[2]->elem[1]->elem[0]->type, RESP_BOOL);
    resp_value_free(v);

    v = READ(">2\r\n+pubsub\r\n*0\r\n");
    assert_int_equal(v->type, RESP_PUSH);
    assert_int_equal(v->elem[1]->n, 0);
    resp_value_free(v);

    /* the attribute rides on the value it precedes, also inside arrays */
    v = READ("|1\r\n+ttl\r\n:3\r\n*2\r\n|1\r\n+a\r\n+b\r\n:7\r\n:8\r\n");
    assert_int_equal(v->type, RESP_ARRAY);
    assert_non_null(v->attr);
    assert_int_equal(v->attr->type, RESP_ATTR);
    assert_int_equal(v->attr->n, 2);
    assert_str(v->attr->elem[0], RESP_STRING, "ttl", 3);
    assert_int_equal(v->attr->elem[1]->i, 3);
    assert_int_equal(v->elem[0]->i, 7);
    assert_str(v->elem[0]->attr->elem[1], RESP_STRING, "b", 1);
    assert_null(v->elem[1]->attr);
    resp_value_free(v);
}

static void read_leaves_the_next_reply_unconsumed(void **state)
{
    (void)state;
    static const char in[] = "*1\r\n+a\r\n:5\r\n";
    resp_value *v;
    size_t consumed;
    assert_int_equal(resp_read_value(in, sizeof(in) - 1, &v, &consumed), 0);
    assert_int_equal(consumed, 8);
    resp_value_free(v);
    assert_int_equal(resp_read_value(in + 8, sizeof(in) - 1 - 8, &v, &consumed), 0);
    assert_int_equal(v->i, 5);
    resp_value_free(v);
}

static void type_names_come_from_the_table(void **state)
{
    (void)state;
    assert_string_equal(resp_type_name(RESP_BULK), "bulk");
    assert_string_equal(resp_type_name(RESP_ATTR), "attribute");
    assert_string_equal(resp_type_name((resp_type)999), "unknown");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(request_table_fed_whole),
        T(request_table_fed_one_byte_at_a_time),
        T(request_pipeline_fed_in_random_chunks),
        T(pipeline_in_one_buffer_parses_each_request),
        T(default_limits_exactly_at_and_one_past),
        T(big_bulk_in_chunks_is_never_rescanned),
        T(many_small_args_in_chunks_scan_each_byte_once),
        T(long_line_in_small_pieces_searched_once),
        T(huge_count_allocates_for_data_not_for_the_claim),
        T(reset_forgets_a_partial_request),
        T(parser_usable_again_after_protocol_error),
        T(inline_plain_words_point_into_buffer_quoted_ones_do_not),
        T(random_garbage_only_ever_parses_waits_or_errs),
        T(scan_every_reply_type_whole_and_with_a_follower),
        T(scan_every_cut_point_of_every_reply_is_incomplete),
        T(scan_rejects_malformed_replies),
        T(scan_depth_exactly_at_and_one_past_the_limit),
        T(scan_huge_claimed_sizes_wait_for_data),
        T(read_scalars_fill_the_right_fields),
        T(read_nested_aggregates_and_attributes),
        T(read_leaves_the_next_reply_unconsumed),
        T(type_names_come_from_the_table),
    };
    return cmocka_run_group_tests_name("resp", tests, NULL, NULL);
}
