/*
 * test_config.c — lib/config (the generic table-driven parser, through a
 * small table with one setting of every type) and node/node_config (the
 * node's real table and start-up order).
 *
 * Covers: every type's parsing incl. memory units and case; every error
 * message; CONFIG SET of an immutable setting; a failed set leaves the old
 * value; files with comments, quotes, escapes, blank lines, CRLF, a repeated
 * name, and errors naming the line; missing file; --name value and
 * --name=value, missing value, unknown flag; flags overriding the file;
 * CONFIG GET formatting and glob matching; strings freed (run under ASan).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/config.h"
#include "lib/err.h"
#include "lib/mem.h"
#include "node/node_config.h"

/* ---- a table with one setting of every type ----------------------------- */

typedef struct tobj {
    bool appendonly;
    int64_t count;
    int64_t anyint;
    int64_t mem;
    int policy;
    char *name;
    char *label;
} tobj;

static const char *const policy_names[] = {"always", "everysec", "no", NULL};

static const cfg_def ttab[] = {
    {.name = "appendonly", .type = CFG_BOOL, .offset = offsetof(tobj, appendonly)},
    {.name = "count", .type = CFG_INT, .offset = offsetof(tobj, count), .def = "5", .min = -10,
     .max = 100},
    {.name = "anyint", .type = CFG_INT, .offset = offsetof(tobj, anyint), .def = "-7"},
    {.name = "mem", .type = CFG_BYTES, .offset = offsetof(tobj, mem), .def = "1kb"},
    {.name = "policy", .alias = "appendfsync", .type = CFG_ENUM, .offset = offsetof(tobj, policy),
     .def = "everysec", .enums = policy_names},
    {.name = "name", .type = CFG_STRING, .offset = offsetof(tobj, name), .def = "cairn"},
    {.name = "label", .type = CFG_STRING, .offset = offsetof(tobj, label),
     .flags = CFG_IMMUTABLE},
    {.name = NULL},
};

/* ---- fixture -------------------------------------------------------------- */

typedef struct fixture {
    char path[64]; /* a temp file, removed by teardown */
    tobj t;
    node_config nc;
    char err[256];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f) return -1;
    strcpy(f->path, "/tmp/cairn-test-config-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0) {
        free(f);
        return -1;
    }
    close(fd);
    cfg_defaults(ttab, &f->t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    cfg_free(ttab, &f->t);
    node_config_free(&f->nc);
    unlink(f->path);
    free(f);
    return 0;
}

static void write_file(fixture *f, const char *text)
{
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
    assert_int_equal(fclose(fp), 0);
}

static int set(fixture *f, const char *name, const char *value)
{
    f->err[0] = '\0';
    return cfg_set(ttab, &f->t, name, value, false, f->err, sizeof(f->err));
}

static const char *get(fixture *f, const char *name)
{
    static char out[256];
    const cfg_def *d = cfg_lookup(ttab, name);
    assert_non_null(d);
    cfg_get(ttab, &f->t, d, out, sizeof(out));
    return out;
}

/* ---- defaults and each type ---------------------------------------------- */

static void defaults_applied(void **state)
{
    fixture *f = *state;
    assert_false(f->t.appendonly);
    assert_int_equal(f->t.count, 5);
    assert_int_equal(f->t.anyint, -7);
    assert_int_equal(f->t.mem, 1024);
    assert_int_equal(f->t.policy, 1);
    assert_string_equal(f->t.name, "cairn");
    assert_non_null(f->t.label); /* NULL default: an owned "" */
    assert_string_equal(f->t.label, "");
}

static void bool_yes_no_any_case(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "appendonly", "yes"), 0);
    assert_true(f->t.appendonly);
    assert_int_equal(set(f, "appendonly", "NO"), 0);
    assert_false(f->t.appendonly);
    assert_int_equal(set(f, "AppendOnly", "Yes"), 0);
    assert_true(f->t.appendonly);
}

static void bool_rejects_other_words(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"1", "0", "true", "", "yess", " yes"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(f, "appendonly", bad[i]), CAIRN_EINVAL);
        assert_string_equal(f->err, "argument must be 'yes' or 'no'");
    }
}

static void int_parses_within_bounds(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "count", "-10"), 0);
    assert_int_equal(f->t.count, -10);
    assert_int_equal(set(f, "count", "100"), 0);
    assert_int_equal(f->t.count, 100);
    assert_int_equal(set(f, "count", "0"), 0);
    assert_int_equal(f->t.count, 0);
    assert_int_equal(set(f, "anyint", "-9223372036854775808"), 0);
    assert_int_equal(f->t.anyint, INT64_MIN);
    assert_int_equal(set(f, "anyint", "9223372036854775807"), 0);
    assert_int_equal(f->t.anyint, INT64_MAX);
}

static void int_out_of_range_message(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "count", "101"), CAIRN_ERANGE);
    assert_string_equal(f->err, "argument must be between -10 and 100 inclusive");
    assert_int_equal(set(f, "count", "-11"), CAIRN_ERANGE);
    assert_int_equal(f->t.count, 5); /* unchanged */
}

static void int_rejects_non_integers(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"", "abc", "+5", "05", "1.5", "5 ", " 5", "1k", "-", "9223372036854775808"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(f, "anyint", bad[i]), CAIRN_EINVAL);
        assert_string_equal(f->err, "argument couldn't be parsed into an integer");
    }
}

static void bytes_units_any_case(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *in;
        int64_t want;
    } cases[] = {
        {"0", 0},
        {"512", 512},
        {"7b", 7},
        {"7B", 7},
        {"1k", 1000},
        {"1K", 1000},
        {"1kb", 1024},
        {"1KB", 1024},
        {"1kB", 1024},
        {"2m", 2000000},
        {"2mb", 2 * 1024 * 1024},
        {"512mb", 512LL * 1024 * 1024},
        {"512MB", 512LL * 1024 * 1024},
        {"3g", 3000000000LL},
        {"3gb", 3LL * 1024 * 1024 * 1024},
        {"3Gb", 3LL * 1024 * 1024 * 1024},
        {"0010", 10}, /* leading zeros, as Redis's memtoull allows */
        {"9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(set(f, "mem", cases[i].in), 0);
        assert_int_equal(f->t.mem, cases[i].want);
    }
}

static void bytes_rejects_bad_memory_values(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"",          "mb",     "-1",    "-1mb",   "1.5mb",
                         "1tb",       "1 mb",   " 1mb",  "1mbb",   "+1",
                         "1e6",       "kb1",    "9223372036854775808",
                         "8589934592gb", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(set(f, "mem", bad[i]), CAIRN_EINVAL);
        assert_string_equal(f->err, "argument must be a memory value");
    }
    assert_int_equal(f->t.mem, 1024);
}

static void enum_any_case_and_alias(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "policy", "ALWAYS"), 0);
    assert_int_equal(f->t.policy, 0);
    assert_int_equal(set(f, "appendfsync", "no"), 0);
    assert_int_equal(f->t.policy, 2);
    assert_int_equal(set(f, "APPENDFSYNC", "EverySec"), 0);
    assert_int_equal(f->t.policy, 1);
}

static void enum_rejects_with_list(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "policy", "sometimes"), CAIRN_EINVAL);
    assert_string_equal(f->err, "argument(s) must be one of the following: always, everysec, no");
    assert_int_equal(f->t.policy, 1);
}

static void string_replaced_and_freed(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "name", "first"), 0);
    assert_int_equal(set(f, "name", "second value with spaces"), 0);
    assert_string_equal(f->t.name, "second value with spaces");
    assert_int_equal(set(f, "name", ""), 0);
    assert_string_equal(f->t.name, "");
    /* ASan's leak check fails the run if the replaced strings leaked. */
    cfg_free(ttab, &f->t);
    assert_null(f->t.name);
    assert_null(f->t.label);
    cfg_free(ttab, &f->t); /* twice is safe */
}

static void defaults_again_frees_old_strings(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "name", "custom"), 0);
    assert_int_equal(set(f, "count", "42"), 0);
    cfg_defaults(ttab, &f->t);
    assert_string_equal(f->t.name, "cairn");
    assert_int_equal(f->t.count, 5);
}

static void unknown_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(set(f, "foo", "1"), CAIRN_ENOTFOUND);
    assert_string_equal(f->err, "unknown setting 'foo'");
}

static void immutable_refused_at_runtime(void **state)
{
    fixture *f = *state;
    int rc = cfg_set(ttab, &f->t, "label", "x", true, f->err, sizeof(f->err));
    assert_true(rc < 0);
    assert_string_equal(f->err, "can't set immutable config");
    assert_string_equal(f->t.label, "");
    /* At start-up the same setting is fine. */
    assert_int_equal(cfg_set(ttab, &f->t, "label", "x", false, f->err, sizeof(f->err)), 0);
    assert_string_equal(f->t.label, "x");
    /* A mutable one at run time is fine too. */
    assert_int_equal(cfg_set(ttab, &f->t, "count", "9", true, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->t.count, 9);
}

static void error_buffer_may_be_null_or_short(void **state)
{
    fixture *f = *state;
    assert_int_equal(cfg_set(ttab, &f->t, "count", "x", false, NULL, 0), CAIRN_EINVAL);
    char small[8];
    assert_int_equal(cfg_set(ttab, &f->t, "count", "x", false, small, sizeof(small)),
                     CAIRN_EINVAL);
    assert_string_equal(small, "argumen");
}

/* ---- lookup, CONFIG GET ---------------------------------------------------- */

static void lookup_by_name_alias_any_case(void **state)
{
    const cfg_def *d = cfg_lookup(ttab, "policy");
    assert_non_null(d);
    assert_ptr_equal(cfg_lookup(ttab, "APPENDFSYNC"), d);
    assert_ptr_equal(cfg_lookup(ttab, "Policy"), d);
    assert_string_equal(cfg_name(d), "policy");
    assert_null(cfg_lookup(ttab, "polic"));
    assert_null(cfg_lookup(ttab, ""));
}

static void get_formats_like_config_get(void **state)
{
    fixture *f = *state;
    assert_string_equal(get(f, "appendonly"), "no");
    assert_int_equal(set(f, "appendonly", "YES"), 0);
    assert_string_equal(get(f, "appendonly"), "yes");
    assert_int_equal(set(f, "mem", "512mb"), 0);
    assert_string_equal(get(f, "mem"), "536870912");
    assert_string_equal(get(f, "anyint"), "-7");
    assert_int_equal(set(f, "policy", "ALWAYS"), 0);
    assert_string_equal(get(f, "appendfsync"), "always");
    assert_string_equal(get(f, "name"), "cairn");
    assert_string_equal(get(f, "label"), "");
}

static void get_truncates_like_snprintf(void **state)
{
    fixture *f = *state;
    const cfg_def *d = cfg_lookup(ttab, "name");
    char out[4];
    assert_int_equal(cfg_get(ttab, &f->t, d, out, sizeof(out)), 5); /* "cairn" */
    assert_string_equal(out, "cai");
    assert_int_equal(cfg_get(ttab, &f->t, d, NULL, 0), 5);
}

typedef struct names {
    int n;
    const char *v[64];
} names;

static void collect_cb(void *arg, const cfg_def *d)
{
    names *ns = arg;
    assert_true(ns->n < 64);
    ns->v[ns->n++] = cfg_name(d);
}

static void match_glob_patterns(void **state)
{
    names ns = {0};
    cfg_match(node_config_table, "max*", collect_cb, &ns);
    assert_int_equal(ns.n, 3);
    assert_string_equal(ns.v[0], "maxmemory");
    assert_string_equal(ns.v[1], "maxmemory-policy");
    assert_string_equal(ns.v[2], "maxclients");

    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "MAXMEMORY", collect_cb, &ns);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.v[0], "maxmemory");

    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "*", collect_cb, &ns);
    size_t settings = 0;
    while (node_config_table[settings].name) settings++;
    assert_int_equal(ns.n, settings); /* "*" matches every setting once */

    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "proto-*-len", collect_cb, &ns);
    assert_int_equal(ns.n, 2);

    /* An alias matches, once, and is reported by its canonical name. */
    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "appendfsync", collect_cb, &ns);
    assert_int_equal(ns.n, 1);
    assert_string_equal(ns.v[0], "fsync");
    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "*fsync", collect_cb, &ns);
    assert_int_equal(ns.n, 1);

    memset(&ns, 0, sizeof(ns));
    cfg_match(node_config_table, "nomatch*", collect_cb, &ns);
    assert_int_equal(ns.n, 0);
}

/* ---- files ------------------------------------------------------------------ */

static int load(fixture *f, const char *text)
{
    write_file(f, text);
    f->err[0] = '\0';
    return cfg_load_file(ttab, &f->t, f->path, f->err, sizeof(f->err));
}

/* Expect "PATH:LINE: msg". */
static void assert_file_err(fixture *f, int line, const char *msg)
{
    char want[512];
    snprintf(want, sizeof(want), "%s:%d: %s", f->path, line, msg);
    assert_string_equal(f->err, want);
}

static void file_comments_quotes_blank_lines(void **state)
{
    fixture *f = *state;
    int rc = load(f, "# cairn test config\n"
                     "\n"
                     "   \t\n"
                     "   # indented comment\n"
                     "appendonly yes\n"
                     "  count   42   \n"
                     "mem 2mb\n"
                     "name \"hello world\"\n"
                     "label 'single # quoted'\n"
                     "appendfsync always\n");
    assert_int_equal(rc, 0);
    assert_true(f->t.appendonly);
    assert_int_equal(f->t.count, 42);
    assert_int_equal(f->t.mem, 2 * 1024 * 1024);
    assert_string_equal(f->t.name, "hello world");
    assert_string_equal(f->t.label, "single # quoted");
    assert_int_equal(f->t.policy, 0);
}

static void file_crlf_line_endings(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "# windows\r\n\r\ncount 7\r\nname \"q\"\r\nlabel plain\r\n"), 0);
    assert_int_equal(f->t.count, 7);
    assert_string_equal(f->t.name, "q");
    assert_string_equal(f->t.label, "plain");
}

static void file_no_final_newline(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "count 8"), 0);
    assert_int_equal(f->t.count, 8);
}

static void file_empty(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, ""), 0);
    assert_int_equal(f->t.count, 5);
}

static void file_escapes_in_quotes(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "name \"a\\\"b\\\\c\\x41\\n\"\n"
                             "label 'it\\'s'\n"),
                     0);
    assert_string_equal(f->t.name, "a\"b\\cA\n");
    assert_string_equal(f->t.label, "it's");
}

static void file_hash_inside_value_is_kept(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "name pass#word\n"), 0);
    assert_string_equal(f->t.name, "pass#word");
}

static void file_empty_quoted_value(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "name \"\"\n"), 0);
    assert_string_equal(f->t.name, "");
}

static void file_last_occurrence_wins(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "count 1\nname a\ncount 2\nname b\n"), 0);
    assert_int_equal(f->t.count, 2);
    assert_string_equal(f->t.name, "b");
}

static void file_error_names_the_line(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "# c\n\ncount 3\nmem 1mb\nname x\n\ncount 1000\nmem 5\n"),
                     CAIRN_ERANGE);
    assert_file_err(f, 7, "count: argument must be between -10 and 100 inclusive");
    assert_int_equal(f->t.count, 3); /* earlier lines stay applied */
    assert_int_equal(f->t.mem, 1024 * 1024);
}

static void file_unknown_setting(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "count 1\nmaxmemroy 1gb\n"), CAIRN_ENOTFOUND);
    assert_file_err(f, 2, "unknown setting 'maxmemroy'");
}

static void file_missing_value(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "count\n"), CAIRN_EINVAL);
    assert_file_err(f, 1, "count: missing value");
}

static void file_too_many_values(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "\r\nname two words\r\n"), CAIRN_EINVAL);
    assert_file_err(f, 2, "name: too many arguments (quote a value with spaces)");
}

static void file_bad_value_messages(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "mem lots\n"), CAIRN_EINVAL);
    assert_file_err(f, 1, "mem: argument must be a memory value");
    assert_int_equal(load(f, "appendonly maybe\n"), CAIRN_EINVAL);
    assert_file_err(f, 1, "appendonly: argument must be 'yes' or 'no'");
    assert_int_equal(load(f, "appendfsync sometimes\n"), CAIRN_EINVAL);
    assert_file_err(f, 1,
                    "appendfsync: argument(s) must be one of the following: always, everysec, no");
}

static void file_unbalanced_quotes(void **state)
{
    const char *bad[] = {"name \"open\n", "name 'open\n", "name \"a\"b\n", "name 'a'b\n",
                         "name \"ends with backslash\\\n"};
    fixture *f = *state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(load(f, bad[i]), CAIRN_EINVAL);
        assert_file_err(f, 1, "unbalanced quotes in configuration line");
    }
    assert_string_equal(f->t.name, "cairn");
}

static void file_nul_bytes_rejected(void **state)
{
    fixture *f = *state;
    assert_int_equal(load(f, "count 1\nname \"a\\x00b\"\n"), CAIRN_EINVAL);
    assert_file_err(f, 2, "name: value contains a NUL byte");

    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    fwrite("name a\0b\n", 1, 9, fp);
    fclose(fp);
    assert_int_equal(cfg_load_file(ttab, &f->t, f->path, f->err, sizeof(f->err)), CAIRN_EINVAL);
    assert_file_err(f, 1, "line contains a NUL byte");
}

static void file_missing(void **state)
{
    fixture *f = *state;
    unlink(f->path);
    int rc = cfg_load_file(ttab, &f->t, f->path, f->err, sizeof(f->err));
    assert_int_equal(rc, -ENOENT);
    char want[128];
    snprintf(want, sizeof(want), "%s: No such file or directory", f->path);
    assert_string_equal(f->err, want);
}

static void file_directory_is_an_error(void **state)
{
    fixture *f = *state;
    assert_int_equal(cfg_load_file(ttab, &f->t, "/tmp", f->err, sizeof(f->err)), -EISDIR);
    assert_string_equal(f->err, "/tmp: Is a directory");
}

static void file_over_limit(void **state)
{
    fixture *f = *state;
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    static char line[4096];
    memset(line, '#', sizeof(line) - 1);
    line[sizeof(line) - 2] = '\n';
    for (int i = 0; i <= CFG_FILE_MAX / (int)(sizeof(line) - 1); i++) fputs(line, fp);
    fclose(fp);
    assert_int_equal(cfg_load_file(ttab, &f->t, f->path, f->err, sizeof(f->err)), CAIRN_ELIMIT);
}

/* ---- command-line flags ----------------------------------------------------- */

static int args(fixture *f, int argc, char **argv)
{
    f->err[0] = '\0';
    return cfg_load_args(ttab, &f->t, argc, argv, 1, f->err, sizeof(f->err));
}

static void args_space_and_equals_forms(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog",     "--count", "12",           "--name=a=b", "--MEM", "3kb",
                    "--label=", "--appendfsync", "no", "--appendonly=yes"};
    assert_int_equal(args(f, 10, argv), 0);
    assert_int_equal(f->t.count, 12);
    assert_string_equal(f->t.name, "a=b");
    assert_int_equal(f->t.mem, 3072);
    assert_string_equal(f->t.label, "");
    assert_int_equal(f->t.policy, 2);
    assert_true(f->t.appendonly);
}

static void args_value_may_start_with_dashes(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "--name", "--count", "--count", "4"};
    assert_int_equal(args(f, 5, argv), 0);
    assert_string_equal(f->t.name, "--count");
    assert_int_equal(f->t.count, 4);
}

static void args_missing_value(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "--count", "3", "--name"};
    assert_int_equal(args(f, 4, argv), CAIRN_EINVAL);
    assert_string_equal(f->err, "--name: missing value");
}

static void args_unknown_flag(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "--nosuch", "1"};
    assert_int_equal(args(f, 3, argv), CAIRN_ENOTFOUND);
    assert_string_equal(f->err, "--nosuch: unknown setting 'nosuch'");
    char *argv2[] = {"prog", "--nosuch=1"};
    assert_int_equal(args(f, 2, argv2), CAIRN_ENOTFOUND);
    assert_string_equal(f->err, "--nosuch: unknown setting 'nosuch'");
}

static void args_bad_value(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "--count=500"};
    assert_int_equal(args(f, 2, argv), CAIRN_ERANGE);
    assert_string_equal(f->err, "--count: argument must be between -10 and 100 inclusive");
}

static void args_positional_rejected(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "--count", "1", "stray"};
    assert_int_equal(args(f, 4, argv), CAIRN_EINVAL);
    assert_string_equal(f->err, "unexpected argument 'stray'");
    char *argv2[] = {"prog", "--"};
    assert_int_equal(args(f, 2, argv2), CAIRN_EINVAL);
    assert_string_equal(f->err, "unexpected argument '--'");
}

static void args_first_skips_leading_words(void **state)
{
    fixture *f = *state;
    char *argv[] = {"prog", "positional", "--count", "2"};
    f->err[0] = '\0';
    assert_int_equal(cfg_load_args(ttab, &f->t, 4, argv, 2, f->err, sizeof(f->err)), 0);
    assert_int_equal(f->t.count, 2);
}

static void find_flag_forms(void **state)
{
    char *argv[] = {"prog", "--port", "1", "--config", "/a.conf", "--x", "--config", "--CONFIG=/b.conf"};
    /* "--config" after --x is --x's value, so the last real one is /b.conf. */
    assert_string_equal(cfg_find_flag(8, argv, 1, "config"), "/b.conf");
    assert_string_equal(cfg_find_flag(5, argv, 1, "config"), "/a.conf");
    assert_string_equal(cfg_find_flag(7, argv, 1, "x"), "--config");
    assert_null(cfg_find_flag(4, argv, 1, "config")); /* no value */
    assert_null(cfg_find_flag(8, argv, 1, "nothere"));
    assert_null(cfg_find_flag(3, argv, 3, "port"));
}

/* ---- node_config ------------------------------------------------------------ */

static int node_load(fixture *f, int argc, char **argv)
{
    f->err[0] = '\0';
    node_config_free(&f->nc);
    return node_config_load(&f->nc, argc, argv, 1, f->err, sizeof(f->err));
}

static void node_defaults(void **state)
{
    fixture *f = *state;
    char *argv[] = {"cairn"};
    assert_int_equal(node_load(f, 1, argv), 0);
    node_config *c = &f->nc;
    assert_string_equal(c->bind, "127.0.0.1");
    assert_int_equal(c->port, 7001);
    assert_string_equal(c->dir, "./cairn-data");
    assert_int_equal(c->fsync, FSYNC_EVERYSEC);
    assert_string_equal(c->requirepass, "");
    assert_int_equal(c->maxmemory, 0);
    assert_int_equal(c->maxmemory_policy, MAXMEMORY_NOEVICTION);
    assert_int_equal(c->maxclients, 10000);
    assert_int_equal(c->timeout, 0);
    assert_int_equal(c->proto_max_bulk_len, 512 * 1024 * 1024);
    assert_int_equal(c->proto_max_multibulk_len, 1048576);
    assert_int_equal(c->proto_inline_max_size, 64 * 1024);
    assert_int_equal(c->client_output_buffer_limit, 256 * 1024 * 1024);
    assert_int_equal(c->wal_snapshot_size, 64 * 1024 * 1024);
    assert_int_equal(c->hz, 10);
    assert_int_equal(c->loglevel, LOGLEVEL_NOTICE);
    assert_string_equal(c->logfile, "");
    assert_null(c->config_file);
}

static void node_flags_override_file(void **state)
{
    fixture *f = *state;
    write_file(f, "port 7100\nmaxmemory 1gb\nrequirepass \"from file\"\nappendfsync always\n"
                  "loglevel warning\n");
    char *argv[] = {"cairn", "--port", "7200", "--config", f->path, "--requirepass=cli"};
    assert_int_equal(node_load(f, 6, argv), 0);
    node_config *c = &f->nc;
    assert_int_equal(c->port, 7200);                   /* flag beats file */
    assert_string_equal(c->requirepass, "cli");        /* flag beats file */
    assert_int_equal(c->maxmemory, 1024 * 1024 * 1024); /* file beats default */
    assert_int_equal(c->fsync, FSYNC_ALWAYS);
    assert_int_equal(c->loglevel, LOGLEVEL_WARNING);
    assert_string_equal(c->config_file, f->path);
}

static void node_config_equals_form(void **state)
{
    fixture *f = *state;
    write_file(f, "hz 50\n");
    char arg[96];
    snprintf(arg, sizeof(arg), "--config=%s", f->path);
    char *argv[] = {"cairn", arg};
    assert_int_equal(node_load(f, 2, argv), 0);
    assert_int_equal(f->nc.hz, 50);
    assert_string_equal(f->nc.config_file, f->path);
}

static void node_config_flag_without_value(void **state)
{
    fixture *f = *state;
    char *argv[] = {"cairn", "--port", "7002", "--config"};
    assert_int_equal(node_load(f, 4, argv), CAIRN_EINVAL);
    assert_string_equal(f->err, "--config: missing value");
    assert_null(f->nc.bind); /* left zeroed */
}

static void node_bad_file_reports_line(void **state)
{
    fixture *f = *state;
    write_file(f, "# node\nport 7001\nport 0\n");
    char *argv[] = {"cairn", "--config", f->path};
    assert_true(node_load(f, 3, argv) < 0);
    char want[128];
    snprintf(want, sizeof(want), "%s:3: port: argument must be between 1 and 65535 inclusive",
             f->path);
    assert_string_equal(f->err, want);
    assert_null(f->nc.bind);
    assert_null(f->nc.config_file);
}

static void node_missing_config_file(void **state)
{
    fixture *f = *state;
    char *argv[] = {"cairn", "--config", "/nonexistent/cairn.conf"};
    assert_int_equal(node_load(f, 3, argv), -ENOENT);
    assert_string_equal(f->err, "/nonexistent/cairn.conf: No such file or directory");
}

static void node_bad_flag(void **state)
{
    fixture *f = *state;
    char *argv[] = {"cairn", "--maxmemory", "lots"};
    assert_int_equal(node_load(f, 3, argv), CAIRN_EINVAL);
    assert_string_equal(f->err, "--maxmemory: argument must be a memory value");
    char *argv2[] = {"cairn", "--proto-max-bulk-len", "1000"};
    assert_int_equal(node_load(f, 3, argv2), CAIRN_ERANGE);
    assert_string_equal(f->err,
                        "--proto-max-bulk-len: argument must be between 1048576 and "
                        "9223372036854775807 inclusive");
}

static void node_runtime_set(void **state)
{
    fixture *f = *state;
    char *argv[] = {"cairn"};
    assert_int_equal(node_load(f, 1, argv), 0);
    node_config *c = &f->nc;
    const char *immutable[] = {"bind", "port", "dir"};
    for (size_t i = 0; i < 3; i++) {
        assert_true(cfg_set(node_config_table, c, immutable[i], "1", true, f->err,
                            sizeof(f->err)) < 0);
        assert_string_equal(f->err, "can't set immutable config");
    }
    assert_int_equal(c->port, 7001);
    assert_int_equal(
        cfg_set(node_config_table, c, "maxmemory", "100MB", true, f->err, sizeof(f->err)), 0);
    assert_int_equal(c->maxmemory, 100 * 1024 * 1024);
    assert_int_equal(
        cfg_set(node_config_table, c, "requirepass", "s3cret", true, f->err, sizeof(f->err)), 0);
    assert_string_equal(c->requirepass, "s3cret");
    assert_int_equal(cfg_set(node_config_table, c, "hz", "501", true, f->err, sizeof(f->err)),
                     CAIRN_ERANGE);
    assert_string_equal(f->err, "argument must be between 1 and 500 inclusive");
    assert_int_equal(cfg_set(node_config_table, c, "maxmemory-policy", "allkeys-lru", true,
                             f->err, sizeof(f->err)),
                     CAIRN_EINVAL);
    assert_string_equal(f->err, "argument(s) must be one of the following: noeviction");

    char out[64];
    cfg_get(node_config_table, c, cfg_lookup(node_config_table, "proto-max-bulk-len"), out,
            sizeof(out));
    assert_string_equal(out, "536870912");
    cfg_get(node_config_table, c, cfg_lookup(node_config_table, "appendfsync"), out, sizeof(out));
    assert_string_equal(out, "everysec");
}

static void node_free_releases_everything(void **state)
{
    fixture *f = *state;
    write_file(f, "requirepass \"file secret\"\nlogfile /tmp/x.log\n");
    char *argv[] = {"cairn", "--config", f->path, "--requirepass", "cli", "--bind", "0.0.0.0"};
    node_config_free(&f->nc);
    size_t before = cairn_mem_used();
    assert_int_equal(node_config_load(&f->nc, 7, argv, 1, f->err, sizeof(f->err)), 0);
    assert_true(cairn_mem_used() > before);
    node_config_free(&f->nc);
    assert_int_equal(cairn_mem_used(), before);
    assert_null(f->nc.requirepass);
    node_config_free(&f->nc); /* twice is safe */
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(defaults_applied),
        T(bool_yes_no_any_case),
        T(bool_rejects_other_words),
        T(int_parses_within_bounds),
        T(int_out_of_range_message),
        T(int_rejects_non_integers),
        T(bytes_units_any_case),
        T(bytes_rejects_bad_memory_values),
        T(enum_any_case_and_alias),
        T(enum_rejects_with_list),
        T(string_replaced_and_freed),
        T(defaults_again_frees_old_strings),
        T(unknown_setting),
        T(immutable_refused_at_runtime),
        T(error_buffer_may_be_null_or_short),
        T(lookup_by_name_alias_any_case),
        T(get_formats_like_config_get),
        T(get_truncates_like_snprintf),
        T(match_glob_patterns),
        T(file_comments_quotes_blank_lines),
        T(file_crlf_line_endings),
        T(file_no_final_newline),
        T(file_empty),
        T(file_escapes_in_quotes),
        T(file_hash_inside_value_is_kept),
        T(file_empty_quoted_value),
        T(file_last_occurrence_wins),
        T(file_error_names_the_line),
        T(file_unknown_setting),
        T(file_missing_value),
        T(file_too_many_values),
        T(file_bad_value_messages),
        T(file_unbalanced_quotes),
        T(file_nul_bytes_rejected),
        T(file_missing),
        T(file_directory_is_an_error),
        T(file_over_limit),
        T(args_space_and_equals_forms),
        T(args_value_may_start_with_dashes),
        T(args_missing_value),
        T(args_unknown_flag),
        T(args_bad_value),
        T(args_positional_rejected),
        T(args_first_skips_leading_words),
        T(find_flag_forms),
        T(node_defaults),
        T(node_flags_override_file),
        T(node_config_equals_form),
        T(node_config_flag_without_value),
        T(node_bad_file_reports_line),
        T(node_missing_config_file),
        T(node_bad_flag),
        T(node_runtime_set),
        T(node_free_releases_everything),
    };
    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
