/*
 * test_manager_state.c — the manager's JSON documents (src/manager/mjson.c)
 * and its in-memory cluster picture (src/manager/mstate.c).
 *
 * Covers: node ids (format, parse, hostile forms); addresses; shard
 * documents round-tripping and every decoder refusal (bad JSON, duplicate
 * keys, wrong types, bounds, a node twice, oversize); node records and
 * heartbeats with defaults and refusals; the leader record; registration
 * through heartbeats (new, unchanged, moved, weight kept after the first
 * registration); health reset on becoming active; shards kept sorted;
 * lookups by id and address; the config reply's "addrs"; STATUS lag and
 * health; TOPOLOGY's version = the largest etcd revision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/log.h"
#include "manager/mjson.h"
#include "manager/mstate.h"

static char *dump(const json_t *j)
{
    static char text[8192];
    cairn_buf b;
    buf_init(&b);
    mjson_append(&b, j);
    snprintf(text, sizeof(text), "%.*s", (int)b.len, b.data);
    buf_close(&b);
    return text;
}

/* ---- ids and addresses ---------------------------------------------------- */

static void ids_format_and_parse(void **state)
{
    (void)state;
    char s[MJSON_ID_LEN + 1];
    mjson_id_fmt(0xa1, s);
    assert_string_equal(s, "00000000000000a1");
    mjson_id_fmt(UINT64_MAX, s);
    assert_string_equal(s, "ffffffffffffffff");
    uint64_t id;
    assert_true(mjson_id_parse("00000000000000a1", 16, &id) && id == 0xa1);
    assert_true(mjson_id_parse("A1", 2, &id) && id == 0xa1);
    assert_true(mjson_id_parse("ffffffffffffffff", 16, &id) && id == UINT64_MAX);
    static const char *bad[] = {"", "0", "0000000000000000", "00000000000000001", "xyz",
                                "a1 ", "-1", "0x1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(mjson_id_parse(bad[i], strlen(bad[i]), &id));
}

static void addresses(void **state)
{
    (void)state;
    static const char *good[] = {"127.0.0.1:7001", "h:1", "[::1]:65535", "node-1.example:80"};
    static const char *bad[] = {"", ":7001", "127.0.0.1", "127.0.0.1:", "h:0", "h:65536",
                                "h:x", "h :1", "h:1\n", "h\"x:1"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(mjson_addr_valid(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mjson_addr_valid(bad[i], strlen(bad[i]))) fail_msg("accepted '%s'", bad[i]);
}

/* ---- shard documents ---------------------------------------------------- */

static pl_shard sample_shard(void)
{
    pl_shard s;
    memset(&s, 0, sizeof(s));
    s.cfg.shard = 7;
    s.cfg.version = 12;
    s.replicas = 3;
    s.cfg.primary = 0xa1;
    s.cfg.secondaries[s.cfg.nsec++] = 0xa2;
    s.cfg.learners[s.cfg.nlearn++] = 0xa3;
    return s;
}

static void shard_encodes_documented_form(void **state)
{
    (void)state;
    pl_shard s = sample_shard();
    json_t *j = mjson_shard_encode(&s);
    assert_string_equal(dump(j),
                        "{\"shard\":7,\"version\":12,\"replicas\":3,\"primary\":\"00000000000000a1\","
                        "\"secondaries\":[\"00000000000000a2\"],\"learners\":[\"00000000000000a3\"]}");
    json_decref(j);
}

static void shard_round_trips(void **state)
{
    (void)state;
    pl_shard s = sample_shard(), back;
    json_t *j = mjson_shard_encode(&s);
    const char *text = dump(j);
    json_decref(j);
    char err[256];
    assert_int_equal(mjson_shard_decode(text, strlen(text), &back, err, sizeof(err)), 0);
    assert_memory_equal(&s, &back, sizeof(s));
    /* arrays may be absent; ids in any case */
    const char *min = "{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"A1\"}";
    assert_int_equal(mjson_shard_decode(min, strlen(min), &back, err, sizeof(err)), 0);
    assert_int_equal(back.cfg.primary, 0xa1);
    assert_int_equal(back.cfg.nsec + back.cfg.nlearn, 0);
}

static void shard_decoder_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"", "invalid JSON"},
        {"[1]", "expected a JSON object"},
        {"{\"shard\":1,\"shard\":2}", "invalid JSON"},
        {"{\"version\":1,\"replicas\":1,\"primary\":\"a\"}", "\"shard\" is missing"},
        {"{\"shard\":0,\"version\":1,\"replicas\":1,\"primary\":\"a\"}", "\"shard\" out of range"},
        {"{\"shard\":\"1\",\"version\":1,\"replicas\":1,\"primary\":\"a\"}", "must be an integer"},
        {"{\"shard\":1,\"version\":1.5,\"replicas\":1,\"primary\":\"a\"}", "must be an integer"},
        {"{\"shard\":1,\"version\":1,\"replicas\":9,\"primary\":\"a\"}", "\"replicas\" out of range"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1}", "\"primary\" is missing"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":null}", "node id"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"zz\"}", "node id"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"a\",\"secondaries\":\"b\"}",
         "must be an array"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"a\",\"secondaries\":[1]}",
         "\"secondaries\"[0] must be a node id"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"a\",\"learners\":"
         "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\"]}",
         "more than 8 members"},
        {"{\"shard\":1,\"version\":1,\"replicas\":1,\"primary\":\"a\",\"secondaries\":[\"A\"]}",
         "appears twice"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pl_shard s;
        char err[256] = "";
        int rc = mjson_shard_decode(cases[i].text, strlen(cases[i].text), &s, err, sizeof(err));
        assert_int_equal(rc, CAIRN_EPROTO);
        if (!strstr(err, cases[i].msg)) fail_msg("case %zu: '%s'", i, err);
    }
    static char big[70000];
    memset(big, ' ', sizeof(big));
    pl_shard s;
    char err[256];
    assert_int_equal(mjson_shard_decode(big, sizeof(big), &s, err, sizeof(err)), CAIRN_EPROTO);
    assert_non_null(strstr(err, "larger than"));
}

/* ---- node records, heartbeats, leader ------------------------------------ */

static void node_record_defaults_and_round_trip(void **state)
{
    (void)state;
    mjson_node n;
    char err[256];
    const char *t = "{\"id\":\"b2\",\"addr\":\"127.0.0.1:7002\"}";
    assert_int_equal(mjson_node_decode(t, strlen(t), &n, err, sizeof(err)), 0);
    assert_int_equal(n.id, 0xb2);
    assert_string_equal(n.zone, "");
    assert_int_equal(n.weight, 1);
    snprintf(n.zone, sizeof(n.zone), "eu-1");
    n.weight = 5;
    json_t *j = mjson_node_encode(&n);
    assert_string_equal(dump(j), "{\"id\":\"00000000000000b2\",\"addr\":\"127.0.0.1:7002\","
                                 "\"zone\":\"eu-1\",\"weight\":5}");
    json_decref(j);
}

static void heartbeat_full_and_minimal(void **state)
{
    (void)state;
    mjson_heartbeat h;
    char err[256];
    const char *full = "{\"id\":\"a1\",\"addr\":\"127.0.0.1:7001\",\"zone\":\"z\",\"weight\":2,"
                       "\"shard\":3,\"version\":9,\"role\":\"secondary\",\"last_lsn\":120,"
                       "\"durable_lsn\":119,\"commit_lsn\":118,\"drain\":true}";
    assert_int_equal(mjson_heartbeat_decode(full, strlen(full), &h, err, sizeof(err)), 0);
    assert_true(h.can_drain); /* the node takes CAIRN DRAIN (a switchover drains it) */
    assert_int_equal(h.node.id, 0xa1);
    assert_string_equal(h.node.addr, "127.0.0.1:7001");
    assert_string_equal(h.node.zone, "z");
    assert_true(h.has_weight);
    assert_int_equal(h.node.weight, 2);
    assert_int_equal(h.shard, 3);
    assert_int_equal(h.version, 9);
    assert_int_equal(h.role, REPL_SECONDARY);
    assert_int_equal(h.last_lsn, 120);
    assert_int_equal(h.durable_lsn, 119);
    assert_int_equal(h.commit_lsn, 118);
    const char *min = "{\"id\":\"a1\",\"addr\":\"h:1\",\"shard\":null}";
    assert_int_equal(mjson_heartbeat_decode(min, strlen(min), &h, err, sizeof(err)), 0);
    assert_false(h.has_weight);
    assert_false(h.can_drain);
    assert_int_equal(h.shard, 0);
    assert_int_equal(h.role, REPL_NONE);
}

static void heartbeat_refusals(void **state)
{
    (void)state;
    static const struct {
        const char *text, *msg;
    } cases[] = {
        {"{\"addr\":\"h:1\"}", "\"id\" is missing"},
        {"{\"id\":\"a1\"}", "\"addr\" is missing"},
        {"{\"id\":\"a1\",\"addr\":\"nohost\"}", "\"addr\" is not valid"},
        {"{\"id\":\"a1\",\"addr\":7001}", "\"addr\" must be a string"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"role\":\"boss\"}", "\"role\" must be"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"last_lsn\":-1}", "\"last_lsn\" out of range"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"weight\":1000001}", "\"weight\" out of range"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"zone\":\"a\\u0000b\"}", "NUL"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"zone\":\"a\\nb\"}", "\"zone\" is not valid"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"zone\":"
         "\"0123456789012345678901234567890123456789012345678901234567890123456789\"}",
         "longer than 63"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"shard\":4294967296}", "\"shard\" out of range"},
        {"{\"id\":\"a1\",\"addr\":\"h:1\",\"drain\":1}", "\"drain\" must be true or false"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mjson_heartbeat h;
        char err[256] = "";
        assert_int_equal(
            mjson_heartbeat_decode(cases[i].text, strlen(cases[i].text), &h, err, sizeof(err)),
            CAIRN_EPROTO);
        if (!strstr(err, cases[i].msg)) fail_msg("case %zu: '%s'", i, err);
    }
}

static void leader_record(void **state)
{
    (void)state;
    char id[16], addr[64];
    const char *t = "{\"id\":\"m1\",\"addr\":\"127.0.0.1:7100\"}";
    assert_int_equal(mjson_leader_decode(t, strlen(t), id, sizeof(id), addr, sizeof(addr)), 0);
    assert_string_equal(id, "m1");
    assert_string_equal(addr, "127.0.0.1:7100");
    assert_int_equal(mjson_leader_decode("{}", 2, id, sizeof(id), addr, sizeof(addr)),
                     CAIRN_EPROTO);
    assert_int_equal(mjson_leader_decode("x", 1, id, sizeof(id), addr, sizeof(addr)),
                     CAIRN_EPROTO);
}

/* ---- mstate --------------------------------------------------------------- */

typedef struct fx {
    mstate st;
} fx;

static int setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    mstate_init(&f->st);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    mstate_close(&f->st);
    test_free(f);
    return 0;
}

static mjson_heartbeat hb(uint64_t id, const char *addr, const char *zone, int64_t weight)
{
    mjson_heartbeat h;
    memset(&h, 0, sizeof(h));
    h.node.id = id;
    snprintf(h.node.addr, sizeof(h.node.addr), "%s", addr);
    snprintf(h.node.zone, sizeof(h.node.zone), "%s", zone);
    h.node.weight = weight;
    h.has_weight = weight > 0;
    return h;
}

static void heartbeat_registers_once(void **state)
{
    fx *f = *state;
    bool must;
    mjson_heartbeat h = hb(1, "h:1", "z", 3);
    mstate_node *n = mstate_heartbeat(&f->st, &h, 1000, &must);
    assert_true(must);
    assert_int_equal(n->info.weight, 3);
    n->stored = true; /* the manager wrote it */
    n->mod_rev = 10;
    h.last_lsn = 50;
    h.can_drain = true;
    n = mstate_heartbeat(&f->st, &h, 1100, &must);
    assert_false(must);
    assert_int_equal(n->last_lsn, 50);
    assert_true(n->can_drain);
    assert_int_equal(n->last_seen, 1100);
    assert_true(n->seen);
    /* the weight is the operator's after registration */
    h.node.weight = 7;
    n = mstate_heartbeat(&f->st, &h, 1200, &must);
    assert_false(must);
    assert_int_equal(n->info.weight, 3);
    /* a move (new address or zone) must be written */
    snprintf(h.node.addr, sizeof(h.node.addr), "h:2");
    n = mstate_heartbeat(&f->st, &h, 1300, &must);
    assert_true(must);
    assert_string_equal(n->info.addr, "h:2");
    assert_int_equal(f->st.nnodes, 1);
    /* a heartbeat without a weight registers weight 1 */
    mjson_heartbeat h2 = hb(2, "h:3", "", 0);
    n = mstate_heartbeat(&f->st, &h2, 1300, &must);
    assert_int_equal(n->info.weight, 1);
}

static void reset_health_on_becoming_active(void **state)
{
    fx *f = *state;
    bool must;
    mjson_heartbeat h = hb(1, "h:1", "", 1);
    mstate_heartbeat(&f->st, &h, 1000, &must);
    mstate_reset_health(&f->st, 5000);
    mstate_node *n = mstate_node_find(&f->st, 1);
    assert_false(n->seen);
    assert_int_equal(n->last_seen, 5000);
    assert_false(mstate_node_healthy(n, 5001));
}

static void shards_sorted_and_lookups(void **state)
{
    fx *f = *state;
    pl_shard s = sample_shard();
    uint32_t order[] = {7, 2, 9, 1};
    for (size_t i = 0; i < 4; i++) {
        s.cfg.shard = order[i];
        s.cfg.primary = 0x100 + order[i];
        mstate_shard_put(&f->st, &s, (int64_t)order[i]);
    }
    s.cfg.shard = 2;
    s.cfg.version = 99;
    s.cfg.primary = 0x102;
    mstate_shard_put(&f->st, &s, 40);
    assert_int_equal(f->st.nshards, 4);
    static const uint32_t sorted[] = {1, 2, 7, 9};
    for (size_t i = 0; i < 4; i++) assert_int_equal(f->st.shards[i].s.cfg.shard, sorted[i]);
    assert_int_equal(mstate_shard_find(&f->st, 2)->s.cfg.version, 99);
    assert_null(mstate_shard_find(&f->st, 3));
    assert_int_equal(mstate_shard_of(&f->st, 0x109)->s.cfg.shard, 9);
    assert_null(mstate_shard_of(&f->st, 0x555));
    assert_int_equal(mstate_revision(&f->st), 40);

    mjson_node n = {.id = 0xa1, .addr = "127.0.0.1:7001", .weight = 1};
    mstate_node_put(&f->st, &n, 77, 0);
    assert_int_equal(mstate_revision(&f->st), 77);
    assert_ptr_equal(mstate_node_lookup(&f->st, "a1", 2), mstate_node_find(&f->st, 0xa1));
    assert_ptr_equal(mstate_node_lookup(&f->st, "127.0.0.1:7001", 14),
                     mstate_node_find(&f->st, 0xa1));
    assert_null(mstate_node_lookup(&f->st, "127.0.0.1:7002", 14));
    assert_null(mstate_node_lookup(&f->st, "b2", 2));
}

static void config_reply_lists_member_addresses(void **state)
{
    fx *f = *state;
    mjson_node a = {.id = 0xa1, .addr = "h:1", .weight = 1}, b = {.id = 0xa2, .addr = "h:2", .weight = 1};
    mstate_node_put(&f->st, &a, 1, 0);
    mstate_node_put(&f->st, &b, 2, 0);
    pl_shard s = sample_shard(); /* a3 is not registered: no address */
    json_t *j = mstate_config_json(&f->st, &s);
    assert_string_equal(dump(json_object_get(j, "addrs")),
                        "{\"00000000000000a1\":\"h:1\",\"00000000000000a2\":\"h:2\"}");
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 12);
    json_decref(j);
}

static void status_shows_health_and_lag(void **state)
{
    fx *f = *state;
    bool must;
    mjson_heartbeat h1 = hb(0xa1, "h:1", "", 1), h2 = hb(0xa2, "h:2", "", 1),
                    h3 = hb(0xa3, "h:3", "", 1);
    h1.last_lsn = 100;
    h2.last_lsn = 90;
    mstate_heartbeat(&f->st, &h1, 10000, &must);
    mstate_heartbeat(&f->st, &h2, 10000, &must);
    mstate_heartbeat(&f->st, &h3, 10000 - PL_UNHEALTHY_MS - 1, &must);
    pl_shard s = sample_shard();
    mstate_shard_put(&f->st, &s, 5);
    json_t *st = mstate_status_json(&f->st, 10000, json_pack("{s:b}", "active", 1));
    json_t *shard = json_array_get(json_object_get(st, "shards"), 0);
    assert_string_equal(dump(json_object_get(shard, "lag")),
                        "{\"00000000000000a2\":10,\"00000000000000a3\":100}");
    json_t *nodes = json_object_get(st, "nodes");
    assert_int_equal(json_array_size(nodes), 3);
    json_t *n1 = json_array_get(nodes, 0), *n3 = json_array_get(nodes, 2);
    assert_true(json_is_true(json_object_get(n1, "healthy")));
    assert_string_equal(json_string_value(json_object_get(n1, "role")), "primary");
    assert_int_equal(json_integer_value(json_object_get(n1, "shard")), 7);
    assert_false(json_is_true(json_object_get(n3, "healthy")));
    assert_string_equal(json_string_value(json_object_get(n3, "role")), "learner");
    assert_int_equal(json_integer_value(json_object_get(n3, "last_seen_ms_ago")),
                     PL_UNHEALTHY_MS + 1);
    json_decref(st);

    json_t *topo = mstate_topology_json(&f->st, 10000);
    assert_int_equal(json_integer_value(json_object_get(topo, "version")), 5);
    assert_int_equal(json_array_size(json_object_get(topo, "shards")), 1);
    json_t *tn = json_array_get(json_object_get(topo, "nodes"), 0);
    assert_string_equal(dump(tn),
                        "{\"id\":\"00000000000000a1\",\"addr\":\"h:1\",\"weight\":1,\"healthy\":true}");
    json_decref(topo);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR);
    const struct CMUnitTest tests[] = {
        T(ids_format_and_parse),
        T(addresses),
        T(shard_encodes_documented_form),
        T(shard_round_trips),
        T(shard_decoder_refusals),
        T(node_record_defaults_and_round_trip),
        T(heartbeat_full_and_minimal),
        T(heartbeat_refusals),
        T(leader_record),
        T(heartbeat_registers_once),
        T(reset_health_on_becoming_active),
        T(shards_sorted_and_lookups),
        T(config_reply_lists_member_addresses),
        T(status_shows_health_and_lag),
    };
    return cmocka_run_group_tests_name("manager_state", tests, NULL, NULL);
}
