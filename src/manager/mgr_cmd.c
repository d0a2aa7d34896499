/*
 * mgr_cmd.c — the manager's RESP commands.
 *
 * Wire protocol (every JSON reply is one bulk string; "config" below is a
 * shard document (mjson.h) plus "addrs":{"<id>":"host:port",..} for every
 * member the registry knows):
 *
 *   command                                   reply
 *   ---------------------------------------   -----------------------------------------
 *   PING [msg]                                +PONG / msg
 *   INFO [section]                            bulk: # Server role:manager active:yes|no ..
 *   SHUTDOWN                                  (resigns, connection closes, exit 0)
 *   CAIRN HEARTBEAT <json>                    {"shard": config | null}
 *   CAIRN REMOVE <shard> <ver> <victim> <req> config (new, or current if ver is old)
 *   CAIRN PROMOTE <shard> <ver> <learner> <req>
 *                                             config (new, or current if ver is old)
 *   CAIRN SHARD-CREATE <replicas>             config of the new shard
 *   CAIRN SWITCHOVER <shard> [node]           config (new) + "switchover":{"from","to",
 *                                             "drained","drained_lsn","paused_ms",
 *                                             "serving"}, once the old primary has
 *                                             drained and the configuration is written
 *                                             (mgr_switchover.c), or -ERR
 *   CAIRN NODE-WEIGHT <node> <w>              +OK
 *   CAIRN GATEWAY-REPORT <id> <addr> <json>   +OK (kept in memory for STATUS: gwreport.h)
 *   CAIRN STATUS                              {"manager":{..},"nodes":[..],"shards":[..],
 *                                              "gateways":[..]}
 *   CAIRN TOPOLOGY                            {"version":rev,"shards":[config],"nodes":[..]}
 *
 * Every CAIRN command needs the active manager: a standby answers
 * "-NOTACTIVE <active manager's host:port>" ("-NOTACTIVE -" when unknown,
 * or when this manager lost contact with etcd); a manager that just won
 * and is still reading etcd answers "-TRYAGAIN ...".  Node arguments are
 * 16-hex ids; operator commands (SWITCHOVER, NODE-WEIGHT) also take an
 * address "host:port".  Refusals are "-ERR <reason>".
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "manager/mgr.h"

typedef void cmd_fn(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out);

/* ---- helpers -------------------------------------------------------------- */

static void reply_json(cairn_buf *out, json_t *j)
{
    cairn_buf b;
    buf_init(&b);
    mjson_append(&b, j);
    json_decref(j);
    reply_bulk(out, b.data, b.len);
    buf_close(&b);
}

static void reply_config(mgr_t *m, cairn_buf *out, const pl_shard *s)
{
    reply_json(out, mstate_config_json(&m->st, s));
}

static bool arg_u64(const resp_arg *a, uint64_t *v)
{
    int64_t i;
    if (!str_to_i64(a->p, a->len, &i) || i < 0) return false;
    *v = (uint64_t)i;
    return true;
}

static bool arg_shard(const resp_arg *a, uint32_t *shard)
{
    uint64_t v;
    if (!arg_u64(a, &v) || v == 0 || v > UINT32_MAX) return false;
    *shard = (uint32_t)v;
    return true;
}

/* A node named by id (registered or not) or by a registered address. */
static bool arg_node_id(mgr_t *m, const resp_arg *a, uint64_t *id)
{
    mstate_node *n = mstate_node_lookup(&m->st, a->p, a->len);
    if (n) {
        *id = n->info.id;
        return true;
    }
    return mjson_id_parse(a->p, a->len, id);
}

static void not_active(mgr_t *m, cairn_buf *out)
{
    if (elect_active(&m->el, mgr_now()) && !m->stopping) {
        reply_error(out, "TRYAGAIN manager is loading the cluster state");
        return;
    }
    char id[128] = "", addr[MJSON_ADDR_MAX] = "";
    if (!m->el.leader && m->el.holder[0] &&
        mjson_leader_decode(m->el.holder, strlen(m->el.holder), id, sizeof(id), addr,
                            sizeof(addr)) == 0 &&
        mjson_addr_valid(addr, strlen(addr)))
        reply_errorf(out, "NOTACTIVE %s", addr);
    else
        reply_error(out, "NOTACTIVE -");
}

/* A request that changes one shard: decide from the cached configuration,
 * swap it into etcd, and decide again from etcd's configuration when the
 * swap loses (a few times; each loss means someone else's change won). */
typedef pl_result decide_fn(mgr_t *m, const pl_shard *cur, const void *req, pl_shard *next,
                            char *err, size_t errlen);

static void change_shard_reply(mgr_t *m, uint32_t shard, decide_fn *decide, const void *req,
                               const char *what, cairn_buf *out)
{
    for (int attempt = 0; attempt < 4; attempt++) {
        mstate_shard *row = mstate_shard_find(&m->st, shard);
        if (!row) {
            reply_errorf(out, "ERR no such shard %" PRIu32, shard);
            return;
        }
        pl_shard cur = row->s, next;
        int64_t mod = row->mod_rev;
        char err[512] = "";
        switch (decide(m, &cur, req, &next, err, sizeof(err))) {
        case PL_CURRENT:
        case PL_NOCHANGE:
            reply_config(m, out, &cur);
            return;
        case PL_REFUSED:
            reply_errorf(out, "ERR %s", err);
            return;
        case PL_CHANGED:
            break;
        }
        const char *why = NULL;
        int rc = mgr_shard_cas(m, &next, mod, &why);
        if (rc == 1) {
            mgr_log_change(&cur, &next, what);
            reply_config(m, out, &next);
            return;
        }
        if (rc < 0) {
            reply_errorf(out, "ERR etcd unavailable: %s", why ? why : "?");
            return;
        }
        /* lost the swap: the cache holds etcd's version now; decide again */
    }
    reply_error(out, "ERR configuration changed concurrently too often; retry");
}

/* The same, for a caller that wants no reply (out == NULL). */
static void change_shard(mgr_t *m, uint32_t shard, decide_fn *decide, const void *req,
                         const char *what, cairn_buf *out)
{
    cairn_buf sink;
    if (!out) {
        buf_init(&sink);
        out = &sink;
    }
    change_shard_reply(m, shard, decide, req, what, out);
    if (out == &sink) buf_close(&sink);
}

/* ---- node protocol -------------------------------------------------------- */

typedef struct member_req {
    uint64_t version, node, requester;
} member_req;

static pl_result decide_restarted(mgr_t *m, const pl_shard *cur, const void *req,
                                  pl_shard *next, char *err, size_t errlen)
{
    (void)m;
    (void)err;
    (void)errlen;
    const member_req *r = req;
    return pl_restarted(cur, r->node, r->version, next);
}

static pl_result decide_all_restarted(mgr_t *m, const pl_shard *cur, const void *req,
                                      pl_shard *next, char *err, size_t errlen)
{
    (void)req;
    (void)err;
    (void)errlen;
    pl_view v;
    mstate_view(&m->st, mgr_now(), &v);
    return pl_all_restarted(&v, cur, next);
}

static void cmd_heartbeat(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    mjson_heartbeat hb;
    char err[256];
    if (mjson_heartbeat_decode(argv[2].p, argv[2].len, &hb, err, sizeof(err)) < 0) {
        reply_errorf(out, "ERR bad heartbeat: %s", err);
        return;
    }
    int64_t now = mgr_now();
    bool must_store = false;
    mstate_node *n = mstate_heartbeat(&m->st, &hb, now, &must_store);
    if (must_store && now >= n->store_retry_at) {
        bool is_new = n->mod_rev == 0;
        if (mgr_node_store(m, n) == 0) {
            if (is_new)
                log_notice("node %016" PRIx64 " registered: %s zone '%s' weight %" PRId64,
                           n->info.id, n->info.addr, n->info.zone, n->info.weight);
            else
                log_notice("node %016" PRIx64 " now at %s zone '%s'", n->info.id, n->info.addr,
                           n->info.zone);
        } else {
            n->store_retry_at = now + 1000; /* do not block every heartbeat on etcd */
        }
    }
    /* A node that has seen a newer configuration than ours means someone
     * else wrote etcd (an earlier active manager): re-read it. */
    mstate_shard *row = hb.shard ? mstate_shard_find(&m->st, hb.shard) : NULL;
    if (hb.shard && (!row || hb.version > row->s.cfg.version) && now >= m->next_reload) {
        m->next_reload = now + 500;
        mgr_shard_reload(m, hb.shard);
    }
    row = mstate_shard_of(&m->st, hb.node.id);
    if (hb.version > 0) {
        n->acked = hb.version;
        n->restart_bump = 0;
    } else if (row && (n->acked > 0 || hb.last_lsn > 0) &&
               n->restart_bump != row->s.cfg.version) {
        /* A member reporting no configuration although it had one (or has
         * a log) restarted; a lone primary needs a version it holds no
         * entries of (pl_restarted).  Once per restart. */
        member_req r = {0, hb.node.id, 0};
        uint32_t shard = row->s.cfg.shard;
        uint64_t before = row->s.cfg.version;
        change_shard(m, shard, decide_restarted, &r, "restarted lone primary", NULL);
        row = mstate_shard_of(&m->st, hb.node.id);
        n = mstate_node_find(&m->st, hb.node.id);
        if (row && row->s.cfg.version != before) n->restart_bump = row->s.cfg.version;
    }
    if (hb.version == 0 && row && now - row->all_restarted_at > 2000) {
        /* The whole group restarted (e.g. every process of `make up`):
         * nobody can act at the old version; issue the next one. */
        uint32_t shard = row->s.cfg.shard;
        uint64_t before = row->s.cfg.version;
        change_shard(m, shard, decide_all_restarted, NULL, "every member restarted", NULL);
        row = mstate_shard_of(&m->st, hb.node.id);
        if (row && row->s.cfg.version != before) row->all_restarted_at = now;
    }
    json_t *j = json_object();
    json_object_set_new(j, "shard", row ? mstate_config_json(&m->st, &row->s) : json_null());
    reply_json(out, j);
}

static pl_result decide_remove(mgr_t *m, const pl_shard *cur, const void *req, pl_shard *next,
                               char *err, size_t errlen)
{
    (void)m;
    const member_req *r = req;
    return pl_remove(cur, r->version, r->node, r->requester, next, err, errlen);
}

static pl_result decide_promote(mgr_t *m, const pl_shard *cur, const void *req, pl_shard *next,
                                char *err, size_t errlen)
{
    (void)m;
    const member_req *r = req;
    return pl_promote(cur, r->version, r->node, r->requester, next, err, errlen);
}

/* REMOVE and PROMOTE: <shard> <version> <node> <requester>. */
static void member_change(mgr_t *m, const resp_arg *argv, decide_fn *decide, const char *what,
                          cairn_buf *out)
{
    uint32_t shard;
    member_req r;
    if (!arg_shard(&argv[2], &shard) || !arg_u64(&argv[3], &r.version) || r.version == 0) {
        reply_error(out, "ERR shard and version must be positive integers");
        return;
    }
    if (!mjson_id_parse(argv[4].p, argv[4].len, &r.node) ||
        !mjson_id_parse(argv[5].p, argv[5].len, &r.requester)) {
        reply_error(out, "ERR node ids must be 1 to 16 hex digits");
        return;
    }
    mstate_shard *row = mstate_shard_find(&m->st, shard);
    if (!row || r.version > row->s.cfg.version) mgr_shard_reload(m, shard);
    char why[128];
    snprintf(why, sizeof(why), "%s %016" PRIx64 ", asked by %016" PRIx64, what, r.node,
             r.requester);
    change_shard(m, shard, decide, &r, why, out);
}

static void cmd_remove(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    member_change(m, argv, decide_remove, "remove", out);
}

static void cmd_promote(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    member_change(m, argv, decide_promote, "promote learner", out);
}

/* ---- operator commands ---------------------------------------------------- */

static void cmd_shard_create(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    uint64_t replicas;
    if (!arg_u64(&argv[2], &replicas) || replicas == 0 || replicas > REPL_MAX_MEMBERS) {
        reply_errorf(out, "ERR replicas must be between 1 and %d", REPL_MAX_MEMBERS);
        return;
    }
    for (int attempt = 0; attempt < 4; attempt++) {
        pl_view v;
        mstate_view(&m->st, mgr_now(), &v);
        pl_shard s;
        char err[256];
        if (pl_create(&v, (uint32_t)replicas, &s, err, sizeof(err)) != PL_CHANGED) {
            reply_errorf(out, "ERR %s", err);
            return;
        }
        const char *why = NULL;
        int rc = mgr_shard_cas(m, &s, 0, &why);
        if (rc == 1) {
            mgr_log_change(NULL, &s, "created");
            reply_config(m, out, &s);
            return;
        }
        if (rc < 0) {
            reply_errorf(out, "ERR etcd unavailable: %s", why ? why : "?");
            return;
        }
        /* shard number taken (cache was behind): re-read and pick again */
        if (mgr_shards_reload(m) < 0) {
            reply_error(out, "ERR etcd unavailable while re-reading shards");
            return;
        }
    }
    reply_error(out, "ERR shards changed concurrently too often; retry");
}

static pl_result decide_switchover(mgr_t *m, const pl_shard *cur, const void *req,
                                   pl_shard *next, char *err, size_t errlen)
{
    pl_view v;
    mstate_view(&m->st, mgr_now(), &v);
    return pl_switchover(&v, cur, *(const uint64_t *)req, next, err, errlen);
}

static void cmd_switchover(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    uint32_t shard;
    uint64_t target = 0;
    if (!arg_shard(&argv[2], &shard)) {
        reply_error(out, "ERR shard must be a positive integer");
        return;
    }
    if (argc > 3 && !arg_node_id(m, &argv[3], &target)) {
        reply_errorf(out, "ERR unknown node '%.*s' (give a 16-hex id or a registered host:port)",
                     (int)(argv[3].len > 64 ? 64 : argv[3].len), argv[3].p);
        return;
    }
    mstate_shard *row = mstate_shard_find(&m->st, shard);
    if (!row) {
        reply_errorf(out, "ERR no such shard %" PRIu32, shard);
        return;
    }
    if (mgr_switchover_busy(m, shard)) {
        reply_errorf(out, "ERR a switchover of shard %" PRIu32 " is already in progress", shard);
        return;
    }
    pl_shard next;
    char err[512];
    if (decide_switchover(m, &row->s, &target, &next, err, sizeof(err)) == PL_REFUSED) {
        reply_errorf(out, "ERR %s", err);
        return;
    }
    /* The primary drains first; the reply comes once the new
     * configuration is written (or the hand-over is given up). */
    if (mgr_switchover_start(m, row, &next)) return;
    /* A primary that cannot drain (an older node, or silent): at once. */
    change_shard(m, shard, decide_switchover, &target, "switchover without a drain", out);
}

static void cmd_node_weight(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    mstate_node *n = mstate_node_lookup(&m->st, argv[2].p, argv[2].len);
    uint64_t w;
    if (!n) {
        reply_errorf(out, "ERR unknown node '%.*s'", (int)(argv[2].len > 64 ? 64 : argv[2].len),
                     argv[2].p);
        return;
    }
    if (!arg_u64(&argv[3], &w) || w > MJSON_WEIGHT_MAX) {
        reply_errorf(out, "ERR weight must be an integer between 0 and %d", MJSON_WEIGHT_MAX);
        return;
    }
    int64_t old = n->info.weight;
    n->info.weight = (int64_t)w;
    if (mgr_node_store(m, n) < 0) {
        n->info.weight = old;
        reply_error(out, "ERR etcd unavailable: weight not changed");
        return;
    }
    log_notice("node %016" PRIx64 ": weight %" PRId64 " -> %" PRIu64, n->info.id, old, w);
    reply_ok(out);
}

/* ---- gateway reports ------------------------------------------------------ */

static void cmd_gateway_report(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    char err[256];
    if (gwrep_put(&m->gws, argv[2].p, argv[2].len, argv[3].p, argv[3].len, argv[4].p,
                  argv[4].len, mgr_now(), err, sizeof(err)) < 0) {
        reply_errorf(out, "ERR bad gateway report: %s", err);
        return;
    }
    reply_ok(out);
}

static void cmd_status(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    (void)argv;
    json_t *mj = json_object();
    json_object_set_new(mj, "id", json_string(m->id));
    json_object_set_new(mj, "addr", json_string(m->addr));
    json_object_set_new(mj, "active", json_boolean(mgr_acting(m)));
    json_object_set_new(mj, "leader", json_string(m->id));
    json_object_set_new(mj, "cluster", json_string(m->cfg.cluster));
    int64_t now = mgr_now();
    json_t *st = mstate_status_json(&m->st, now, mj);
    gwrep_expire(&m->gws, now);
    json_object_set_new(st, "gateways", gwrep_json(&m->gws, now));
    reply_json(out, st);
}

static void cmd_topology(mgr_t *m, size_t argc, const resp_arg *argv, cairn_buf *out)
{
    (void)argc;
    (void)argv;
    reply_json(out, mstate_topology_json(&m->st, mgr_now()));
}

/* ---- dispatch ------------------------------------------------------------- */

/* CAIRN subcommands: name, arity counting "CAIRN" and the name (-N: N or
 * N + 1, one optional argument), handler. */
#define MGR_CMD_MAP(X)                                         \
    X(HEARTBEAT, "heartbeat", 3, cmd_heartbeat)                \
    X(REMOVE, "remove", 6, cmd_remove)                         \
    X(PROMOTE, "promote", 6, cmd_promote)                      \
    X(SHARD_CREATE, "shard-create", 3, cmd_shard_create)       \
    X(SWITCHOVER, "switchover", -3, cmd_switchover)            \
    X(NODE_WEIGHT, "node-weight", 4, cmd_node_weight)          \
    X(GATEWAY_REPORT, "gateway-report", 5, cmd_gateway_report) \
    X(STATUS, "status", 2, cmd_status)                         \
    X(TOPOLOGY, "topology", 2, cmd_topology)

static const struct {
    const char *name;
    int arity;
    cmd_fn *fn;
} cmds[] = {
#define MGR_CMD_ROW(id, name, arity, fn) {name, arity, fn},
    MGR_CMD_MAP(MGR_CMD_ROW)
#undef MGR_CMD_ROW
};

static void cmd_info(mgr_t *m, cairn_buf *out)
{
    char buf[2048];
    char hid[128] = "", haddr[sizeof(m->addr)] = "";
    bool acting = mgr_acting(m);
    if (acting) {
        snprintf(hid, sizeof(hid), "%s", m->id);
        snprintf(haddr, sizeof(haddr), "%s", m->addr);
    } else if (m->el.holder[0]) {
        mjson_leader_decode(m->el.holder, strlen(m->el.holder), hid, sizeof(hid), haddr,
                            sizeof(haddr));
    }
    int n = snprintf(buf, sizeof(buf),
                     "# Server\r\n"
                     "role:manager\r\n"
                     "active:%s\r\n"
                     "manager_id:%s\r\n"
                     "cluster:%s\r\n"
                     "tcp_port:%lld\r\n"
                     "process_id:%d\r\n"
                     "uptime_in_seconds:%lld\r\n"
                     "leader_id:%s\r\n"
                     "leader_addr:%s\r\n"
                     "\r\n# Cluster\r\n"
                     "nodes:%zu\r\n"
                     "shards:%zu\r\n"
                     "gateways:%zu\r\n"
                     "connected_clients:%zu\r\n",
                     acting ? "yes" : "no", m->id, m->cfg.cluster, (long long)m->cfg.port,
                     (int)getpid(), (long long)((clock_ms() - m->start_ms) / 1000), hid, haddr,
                     acting ? m->st.nnodes : 0, acting ? m->st.nshards : 0,
                     acting ? gwrep_count(&m->gws, mgr_now()) : 0,
                     m->srv ? rserver_nconns(m->srv) : 0);
    reply_bulk(out, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

enum rserver_action mgr_handle(void *arg, const char *peer, size_t argc, const resp_arg *argv,
                               cairn_buf *out)
{
    mgr_t *m = arg;
    (void)peer;
    const resp_arg *a0 = &argv[0];
    if (str_eq_nocase(a0->p, a0->len, "ping")) {
        if (argc > 2) reply_error(out, "ERR wrong number of arguments for 'ping' command");
        else if (argc == 2) reply_bulk(out, argv[1].p, argv[1].len);
        else reply_simple(out, "PONG");
        return RSERVER_CONTINUE;
    }
    if (str_eq_nocase(a0->p, a0->len, "info")) {
        cmd_info(m, out);
        return RSERVER_CONTINUE;
    }
    if (str_eq_nocase(a0->p, a0->len, "quit")) {
        reply_ok(out);
        return RSERVER_CLOSE;
    }
    if (str_eq_nocase(a0->p, a0->len, "command")) {
        reply_array(out, 0); /* redis-cli asks COMMAND DOCS at start */
        return RSERVER_CONTINUE;
    }
    if (str_eq_nocase(a0->p, a0->len, "shutdown")) {
        log_notice("SHUTDOWN requested by %s", peer);
        mgr_stop(m);
        return RSERVER_CLOSE;
    }
    if (!str_eq_nocase(a0->p, a0->len, "cairn")) {
        reply_errorf(out, "ERR unknown command '%.*s'", (int)(a0->len > 64 ? 64 : a0->len), a0->p);
        return RSERVER_CONTINUE;
    }
    if (argc < 2) {
        reply_error(out, "ERR wrong number of arguments for 'cairn' command");
        return RSERVER_CONTINUE;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (!str_eq_nocase(argv[1].p, argv[1].len, cmds[i].name)) continue;
        int ar = cmds[i].arity;
        if ((ar > 0 && argc != (size_t)ar) || (ar < 0 && argc < (size_t)-ar) ||
            (ar < 0 && argc > (size_t)-ar + 1)) {
            reply_errorf(out, "ERR wrong number of arguments for 'cairn|%s' command",
                         cmds[i].name);
            return RSERVER_CONTINUE;
        }
        if (!mgr_acting(m)) {
            not_active(m, out);
            return RSERVER_CONTINUE;
        }
        cmds[i].fn(m, argc, argv, out);
        return RSERVER_CONTINUE;
    }
    reply_errorf(out, "ERR unknown CAIRN subcommand '%.*s'",
                 (int)(argv[1].len > 64 ? 64 : argv[1].len), argv[1].p);
    return RSERVER_CONTINUE;
}
