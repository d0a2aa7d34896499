/*
 * test_util.c — Redis-exact number parsing/formatting, glob matching, and
 * the command table's invariants (sorted, lookups case-insensitive and
 * exact).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lib/util.h"
#include "node/cmd.h"

static void i64_parse_accepts_redis_forms(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
        int64_t v;
    } cases[] = {
        {"0", true, 0},         {"1", true, 1},       {"-1", true, -1},
        {"9223372036854775807", true, INT64_MAX},   {"-9223372036854775808", true, INT64_MIN},
        {"9223372036854775808", false, 0},          {"-9223372036854775809", false, 0},
        {"", false, 0},         {"-", false, 0},      {"+1", false, 0},
        {"01", false, 0},       {"-0", false, 0},     {" 1", false, 0},
        {"1 ", false, 0},       {"1.0", false, 0},    {"abc", false, 0},
        {"18446744073709551616", false, 0},          {"123456789012345678901", false, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int64_t v = 42;
        bool ok = str_to_i64(cases[i].s, strlen(cases[i].s), &v);
        assert_int_equal(ok, cases[i].ok);
        if (ok) assert_true(v == cases[i].v);
    }
}

static void i64_format_round_trips(void **state)
{
    (void)state;
    int64_t vals[] = {0, 1, -1, 10, 999, INT64_MAX, INT64_MIN, 1234567890123LL};
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        char buf[24];
        size_t n = i64_to_str(buf, vals[i]);
        int64_t back;
        assert_true(str_to_i64(buf, n, &back));
        assert_true(back == vals[i]);
    }
}

static void ldouble_format_matches_redis_incrbyfloat(void **state)
{
    (void)state;
    static const struct {
        long double v;
        const char *s;
    } cases[] = {{10.5L, "10.5"}, {3.0L, "3"}, {0.0L, "0"}, {-0.0L, "0"}, {5.0e3L, "5000"},
                 {-1.5L, "-1.5"}, {0.1L, "0.1"}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[128];
        size_t n = ldouble_to_str(buf, sizeof(buf), cases[i].v);
        assert_string_equal(buf, cases[i].s);
        assert_int_equal(n, strlen(cases[i].s));
    }
}

static void ldouble_parse_rejects_spaces_and_nan(void **state)
{
    (void)state;
    long double v;
    assert_true(str_to_ldouble("1.5", 3, &v));
    assert_true(str_to_ldouble("5e3", 3, &v));
    assert_false(str_to_ldouble(" 1", 2, &v));
    assert_false(str_to_ldouble("1 ", 2, &v));
    assert_false(str_to_ldouble("nan", 3, &v));
    assert_false(str_to_ldouble("", 0, &v));
    assert_false(str_to_ldouble("1x", 2, &v));
}

static void glob_matches_like_redis(void **state)
{
    (void)state;
    static const struct {
        const char *p, *s;
        bool nocase, want;
    } cases[] = {
        {"*", "", false, false}, /* Redis: "" matches nothing */          {"*", "anything", false, true},
        {"h?llo", "hello", false, true}, {"h?llo", "hllo", false, false},
        {"h*llo", "heeeello", false, true}, {"h[ae]llo", "hallo", false, true},
        {"h[ae]llo", "hillo", false, false}, {"h[^e]llo", "hallo", false, true},
        {"h[^e]llo", "hello", false, false}, {"h[a-b]llo", "hbllo", false, true},
        {"h[a-b]llo", "hcllo", false, false}, {"h\\*llo", "h*llo", false, true},
        {"h\\*llo", "hello", false, false}, {"HELLO", "hello", true, true},
        {"HELLO", "hello", false, false}, {"a*b*c", "aXXbYYc", false, true},
        {"a*b*c", "aXXbYY", false, false}, {"[", "[", false, false},
        {"key:*", "key:1", false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(glob_match(cases[i].p, strlen(cases[i].p), cases[i].s, strlen(cases[i].s),
                                    cases[i].nocase),
                         cases[i].want);
}

static void glob_hostile_pattern_finishes(void **state)
{
    (void)state;
    char pat[200], s[200];
    for (int i = 0; i < 199; i++) pat[i] = (i % 2) ? 'a' : '*';
    pat[199] = 'b';
    memset(s, 'a', sizeof(s));
    /* Exponential without the skip-longer cut; must return promptly. */
    assert_false(glob_match(pat, sizeof(pat), s, sizeof(s), false));
}

static void command_table_is_sorted_and_lookup_ignores_case(void **state)
{
    (void)state;
    size_t n;
    const cmd_def *t = cmd_table(&n);
    for (size_t i = 1; i < n; i++) assert_true(strcmp(t[i - 1].name, t[i].name) < 0);
    for (size_t i = 0; i < n; i++) {
        char up[64];
        size_t l = strlen(t[i].name);
        for (size_t j = 0; j < l; j++) up[j] = (char)(t[i].name[j] - 32 * (t[i].name[j] >= 'a' && t[i].name[j] <= 'z'));
        assert_ptr_equal(cmd_lookup(up, l), &t[i]);
        assert_ptr_equal(cmd_lookup(t[i].name, l), &t[i]);
        assert_true(t[i].arity != 0);
    }
    assert_null(cmd_lookup("nosuchcmd", 9));
    assert_null(cmd_lookup("", 0));
    /* near misses: a prefix, one byte more, an embedded NUL, too long */
    assert_null(cmd_lookup("ge", 2));
    assert_null(cmd_lookup("gett", 4));
    assert_null(cmd_lookup("get\0", 4));
    assert_ptr_equal(cmd_lookup("getXYZ", 3), cmd_lookup("GET", 3));
    assert_null(cmd_lookup("incrbyfloatincrbyfloatincrbyfloa", 32));
    assert_null(cmd_lookup("incrbyfloatincrbyfloatincrbyfloat", 33));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(i64_parse_accepts_redis_forms),
        cmocka_unit_test(i64_format_round_trips),
        cmocka_unit_test(ldouble_format_matches_redis_incrbyfloat),
        cmocka_unit_test(ldouble_parse_rejects_spaces_and_nan),
        cmocka_unit_test(glob_matches_like_redis),
        cmocka_unit_test(glob_hostile_pattern_finishes),
        cmocka_unit_test(command_table_is_sorted_and_lookup_ignores_case),
    };
    return cmocka_run_group_tests_name("util", tests, NULL, NULL);
}
