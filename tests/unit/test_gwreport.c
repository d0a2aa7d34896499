/*
 * test_gwreport.c — gateway statistics on their way to `cairn ctl status`:
 * the gateway's report encoder (src/gateway/gw_report.c), the manager's
 * table of reports (src/manager/gwreport.c) and ctl's table
 * (src/ctl/ctl_fmt.c).
 *
 * Covers: a report stored and rendered for STATUS (id, addr, age, known
 * fields kept, unknown dropped); a newer report replaces the older; a
 * report older than the TTL leaves STATUS and the table; every refusal
 * (id, address, JSON, types, limits) leaves the table unchanged; the table
 * stays bounded, forgetting the stalest gateway; the gateway's encoder
 * produces a document the manager accepts, with roles, counts,
 * percentiles and slow start right; ctl prints a row per node.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ctl/ctl_fmt.h"
#include "gateway/gw.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "manager/gwreport.h"

typedef struct fixture {
    gwrep_table t;
} fixture;

static int setup(void **state)
{
    fixture *f = cairn_calloc(1, sizeof(*f));
    gwrep_init(&f->t);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    gwrep_close(&f->t);
    cairn_free(f);
    return 0;
}

static int put(fixture *f, const char *id, const char *addr, const char *json, int64_t now)
{
    char err[256];
    return gwrep_put(&f->t, id, strlen(id), addr, strlen(addr), json, strlen(json), now, err,
                     sizeof(err));
}

static char *dump(const json_t *j)
{
    static char text[16384];
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    snprintf(text, sizeof(text), "%s", s ? s : "(null)");
    free(s);
    return text;
}

static const char one_node[] =
    "{\"pid\":42,\"uptime_s\":7,\"commands\":100,\"future\":\"x\","
    "\"nodes\":[{\"id\":\"00000000000000a1\",\"addr\":\"127.0.0.1:7001\",\"shard\":1,"
    "\"role\":\"primary\",\"requests\":90,\"errors\":1,\"outstanding\":0,\"p50_us\":128,"
    "\"p99_us\":512,\"p999_us\":1024,\"ejected\":false,\"slow_start\":false,\"healthy\":true,"
    "\"newfield\":[1,2]}]}";

static void report_stored_and_rendered(void **state)
{
    fixture *f = *state;
    assert_int_equal(put(f, "box:6380-42", "127.0.0.1:6380", one_node, 1000), 0);
    json_t *a = gwrep_json(&f->t, 1250);
    assert_string_equal(
        dump(a),
        "[{\"id\":\"box:6380-42\",\"addr\":\"127.0.0.1:6380\",\"age_ms\":250,\"pid\":42,"
        "\"uptime_s\":7,\"commands\":100,\"nodes\":[{\"id\":\"00000000000000a1\","
        "\"addr\":\"127.0.0.1:7001\",\"shard\":1,\"role\":\"primary\",\"requests\":90,"
        "\"errors\":1,\"outstanding\":0,\"p50_us\":128,\"p99_us\":512,\"p999_us\":1024,"
        "\"ejected\":false,\"slow_start\":false,\"healthy\":true}]}]");
    json_decref(a);
    assert_int_equal(gwrep_count(&f->t, 1250), 1);
}

static void newer_report_replaces(void **state)
{
    fixture *f = *state;
    assert_int_equal(put(f, "g1", "127.0.0.1:6380", one_node, 1000), 0);
    assert_int_equal(put(f, "g2", "127.0.0.1:6381", "{}", 1100), 0);
    assert_int_equal(put(f, "g1", "127.0.0.1:6390", "{\"commands\":5}", 2000), 0);
    json_t *a = gwrep_json(&f->t, 2000);
    assert_int_equal(json_array_size(a), 2);
    json_t *g1 = json_array_get(a, 0); /* first to report stays first */
    assert_string_equal(json_string_value(json_object_get(g1, "id")), "g1");
    assert_string_equal(json_string_value(json_object_get(g1, "addr")), "127.0.0.1:6390");
    assert_int_equal(json_integer_value(json_object_get(g1, "commands")), 5);
    assert_null(json_object_get(g1, "nodes"));
    assert_int_equal(json_integer_value(json_object_get(g1, "age_ms")), 0);
    json_decref(a);
}

static void stale_report_expires(void **state)
{
    fixture *f = *state;
    assert_int_equal(put(f, "g1", "127.0.0.1:6380", one_node, 1000), 0);
    assert_int_equal(put(f, "g2", "127.0.0.1:6381", one_node, 3000), 0);
    assert_int_equal(gwrep_count(&f->t, 1000 + GWREP_TTL_MS), 2);
    json_t *a = gwrep_json(&f->t, 1001 + GWREP_TTL_MS);
    assert_int_equal(json_array_size(a), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 0), "id")), "g2");
    json_decref(a);
    gwrep_expire(&f->t, 1001 + GWREP_TTL_MS);
    assert_int_equal(f->t.n, 1);
    gwrep_expire(&f->t, 3001 + GWREP_TTL_MS);
    assert_int_equal(f->t.n, 0);
}

static void refusals_leave_table_unchanged(void **state)
{
    fixture *f = *state;
    assert_int_equal(put(f, "g1", "127.0.0.1:6380", one_node, 1000), 0);
    char longid[GWREP_ID_MAX + 1];
    memset(longid, 'x', GWREP_ID_MAX);
    longid[GWREP_ID_MAX] = '\0';
    struct {
        const char *id, *addr, *json, *why;
    } bad[] = {
        {"", "127.0.0.1:6380", "{}", "gateway id"},
        {"a b", "127.0.0.1:6380", "{}", "gateway id"},
        {"a\"b", "127.0.0.1:6380", "{}", "gateway id"},
        {longid, "127.0.0.1:6380", "{}", "gateway id"},
        {"g1", "127.0.0.1", "{}", "address"},
        {"g1", "127.0.0.1:0", "{}", "address"},
        {"g1", "h\xc3\xa9:1", "{}", "address"},
        {"g1", "127.0.0.1:6380", "", "not JSON"},
        {"g1", "127.0.0.1:6380", "{", "not JSON"},
        {"g1", "127.0.0.1:6380", "[]", "not a JSON object"},
        {"g1", "127.0.0.1:6380", "{\"pid\":1,\"pid\":2}", "not JSON"},
        {"g1", "127.0.0.1:6380", "{\"commands\":\"9\"}", "\"commands\" must be an integer"},
        {"g1", "127.0.0.1:6380", "{\"commands\":1.5}", "\"commands\" must be an integer"},
        {"g1", "127.0.0.1:6380", "{\"nodes\":{}}", "\"nodes\" must be an array"},
        {"g1", "127.0.0.1:6380", "{\"nodes\":[1]}", "nodes[0] is not a JSON object"},
        {"g1", "127.0.0.1:6380", "{\"nodes\":[{},{\"ejected\":1}]}",
         "nodes[1]: \"ejected\" must be true or false"},
        {"g1", "127.0.0.1:6380", "{\"nodes\":[{\"role\":\"a-role-name-too-long\"}]}",
         "\"role\" must be a short string"},
        {"g1", "127.0.0.1:6380", "{\"nodes\":[{\"addr\":7}]}", "\"addr\" must be a short string"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[256] = "";
        int rc = gwrep_put(&f->t, bad[i].id, strlen(bad[i].id), bad[i].addr, strlen(bad[i].addr),
                           bad[i].json, strlen(bad[i].json), 2000, err, sizeof(err));
        if (rc == 0 || !strstr(err, bad[i].why))
            fail_msg("case %zu: rc %d, err '%s', wanted '%s'", i, rc, err, bad[i].why);
    }
    /* the limits on size and node count */
    cairn_buf b;
    buf_init(&b);
    buf_append_str(&b, "{\"nodes\":[");
    for (int i = 0; i <= GWREP_NODES_MAX; i++) buf_append_str(&b, i ? ",{}" : "{}");
    buf_append_str(&b, "]}");
    char err[256];
    assert_int_equal(gwrep_put(&f->t, "g1", 2, "h:1", 3, b.data, b.len, 2000, err, sizeof(err)),
                     CAIRN_EPROTO);
    assert_non_null(strstr(err, "at most"));
    buf_reset(&b, 0);
    buf_append_str(&b, "{\"pad\":\"");
    while (b.len <= GWREP_TEXT_MAX) buf_append_str(&b, "xxxxxxxxxxxxxxxx");
    buf_append_str(&b, "\"}");
    assert_int_equal(gwrep_put(&f->t, "g1", 2, "h:1", 3, b.data, b.len, 2000, err, sizeof(err)),
                     CAIRN_EPROTO);
    assert_non_null(strstr(err, "longer than"));
    buf_close(&b);

    json_t *a = gwrep_json(&f->t, 2000);
    assert_int_equal(json_array_size(a), 1);
    json_t *g1 = json_array_get(a, 0);
    assert_string_equal(json_string_value(json_object_get(g1, "addr")), "127.0.0.1:6380");
    assert_int_equal(json_integer_value(json_object_get(g1, "age_ms")), 1000);
    json_decref(a);
}

static void table_bounded_forgets_stalest(void **state)
{
    fixture *f = *state;
    char id[32];
    for (int i = 0; i < GWREP_MAX; i++) {
        snprintf(id, sizeof(id), "g%d", i);
        assert_int_equal(put(f, id, "127.0.0.1:6380", "{}", 1000 + i), 0);
    }
    assert_int_equal(put(f, "g0", "127.0.0.1:6380", "{}", 2000), 0);
    /* g1 (at 1001) is now the stalest, not g0 (refreshed) */
    assert_int_equal(put(f, "new", "127.0.0.1:6380", "{}", 3000), 0);
    assert_int_equal(f->t.n, GWREP_MAX);
    bool g0 = false, g1 = false, fresh = false;
    for (size_t i = 0; i < f->t.n; i++) {
        g0 |= strcmp(f->t.rows[i].id, "g0") == 0;
        g1 |= strcmp(f->t.rows[i].id, "g1") == 0;
        fresh |= strcmp(f->t.rows[i].id, "new") == 0;
    }
    assert_true(g0 && !g1 && fresh);
}

/* A gateway with one shard (primary a1, secondary a2) and a node a3 that
 * serves no shard; the encoder's document goes through the manager's
 * table. */
static void encoder_output_accepted(void **state)
{
    fixture *f = *state;
    gw_t *g = cairn_calloc(1, sizeof(*g));
    g->cfg.slow_start_ms = 5000;
    g->start_ms = clock_ms() - 3000;
    g->commands = 77;
    g->topo_version = 12;
    gw_node nodes[3];
    gw_node *np[3] = {&nodes[0], &nodes[1], &nodes[2]};
    memset(nodes, 0, sizeof(nodes));
    int64_t now = clock_mono_ms();
    for (int i = 0; i < 3; i++) {
        nodes[i].id = 0xa1 + (uint64_t)i;
        snprintf(nodes[i].addr, sizeof(nodes[i].addr), "127.0.0.1:%d", 7001 + i);
        nodes[i].mgr_healthy = true;
    }
    nodes[0].requests = 1000;
    nodes[0].errors = 2;
    nodes[0].outstanding = 3;
    nodes[0].hist[6] = 500; /* [64, 128) us */
    nodes[0].hist[8] = 499; /* [256, 512) */
    nodes[0].hist[12] = 1;  /* [4096, 8192) */
    nodes[1].admitted_at_us = (now - 1000) * 1000; /* re-admitted a second ago */
    nodes[2].ejected = true;
    g->nodes = np;
    g->nnodes = 3;
    gw_shard shard = {.id = 4, .version = 2, .primary = 0xa1, .members = {0xa1, 0xa2},
                      .nmembers = 2};
    g->shards = &shard;
    g->nshards = 1;

    cairn_buf b;
    buf_init(&b);
    gw_report_encode(g, now, &b);
    char err[256] = "";
    int rc = gwrep_put(&f->t, "box:6380-1", 10, "127.0.0.1:6380", 14, b.data, b.len, 5, err,
                       sizeof(err));
    if (rc != 0) fail_msg("refused: %s: %.*s", err, (int)b.len, b.data);
    buf_close(&b);

    json_t *a = gwrep_json(&f->t, 5);
    json_t *r = json_array_get(a, 0);
    assert_int_equal(json_integer_value(json_object_get(r, "commands")), 77);
    assert_int_equal(json_integer_value(json_object_get(r, "topology_version")), 12);
    assert_true(json_integer_value(json_object_get(r, "uptime_s")) >= 2);
    json_t *ns = json_object_get(r, "nodes");
    assert_int_equal(json_array_size(ns), 3);
    json_t *p = json_array_get(ns, 0), *s = json_array_get(ns, 1), *x = json_array_get(ns, 2);
    assert_string_equal(json_string_value(json_object_get(p, "id")), "00000000000000a1");
    assert_string_equal(json_string_value(json_object_get(p, "addr")), "127.0.0.1:7001");
    assert_string_equal(json_string_value(json_object_get(p, "role")), "primary");
    assert_int_equal(json_integer_value(json_object_get(p, "shard")), 4);
    assert_int_equal(json_integer_value(json_object_get(p, "requests")), 1000);
    assert_int_equal(json_integer_value(json_object_get(p, "errors")), 2);
    assert_int_equal(json_integer_value(json_object_get(p, "outstanding")), 3);
    assert_int_equal(json_integer_value(json_object_get(p, "p50_us")), 128);
    assert_int_equal(json_integer_value(json_object_get(p, "p99_us")), 512);
    assert_int_equal(json_integer_value(json_object_get(p, "p999_us")), 512);
    assert_false(json_is_true(json_object_get(p, "slow_start")));
    assert_string_equal(json_string_value(json_object_get(s, "role")), "secondary");
    assert_int_equal(json_integer_value(json_object_get(s, "p50_us")), 0);
    assert_true(json_is_true(json_object_get(s, "slow_start")));
    assert_string_equal(json_string_value(json_object_get(x, "role")), "none");
    assert_int_equal(json_integer_value(json_object_get(x, "shard")), 0);
    assert_true(json_is_true(json_object_get(x, "ejected")));
    json_decref(a);
    cairn_free(g);
}

static void ctl_prints_gateway_table(void **state)
{
    fixture *f = *state;
    assert_int_equal(put(f, "box:6380-42", "127.0.0.1:6380", one_node, 1000), 0);
    json_t *st = json_pack("{s:{s:s,s:s,s:b,s:s}, s:[], s:[]}", "manager", "id", "m1", "addr",
                           "127.0.0.1:7100", "active", 1, "cluster", "c", "nodes", "shards");
    json_object_set_new(st, "gateways", gwrep_json(&f->t, 1300));
    char *text = json_dumps(st, JSON_COMPACT);
    cairn_buf out;
    buf_init(&out);
    assert_int_equal(ctl_fmt_status(text, strlen(text), &out), 0);
    buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "GATEWAYS (1)\n"));
    assert_non_null(strstr(out.data, "gateway 127.0.0.1:6380  id box:6380-42  up 7s  commands 100"));
    assert_non_null(strstr(out.data, "(reported 300ms ago)"));
    assert_non_null(strstr(out.data, "P50_US  P99_US  P999_US  STATE"));
    assert_non_null(strstr(out.data, "  127.0.0.1:7001        primary    1      90        1       "
                                     "0            128     512     1024     ok\n"));
    buf_close(&out);
    free(text);
    json_decref(st);

    /* no gateway reporting */
    const char none[] = "{\"manager\":{},\"nodes\":[],\"shards\":[],\"gateways\":[]}";
    buf_init(&out);
    assert_int_equal(ctl_fmt_status(none, strlen(none), &out), 0);
    buf_append(&out, "", 1);
    assert_non_null(strstr(out.data, "GATEWAYS (0)\n  none reporting\n"));
    buf_close(&out);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        T(report_stored_and_rendered),
        T(newer_report_replaces),
        T(stale_report_expires),
        T(refusals_leave_table_unchanged),
        T(table_bounded_forgets_stalest),
        T(encoder_output_accepted),
        T(ctl_prints_gateway_table),
    };
    return cmocka_run_group_tests_name("gwreport", tests, NULL, NULL);
}
