/*
 * gw_backend.c — what the gateway knows of the cluster and how it reaches
 * it: the topology (polled from the active manager every 100 ms, so a change
 * is seen within about that), the ring over the shards, a few pipelined
 * connections per node shared by every client, node choice (read policy +
 * scheduling policy), and node health (passive ejection on errors, active
 * PING probes, slow start when a node comes back).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"

#define TOPO_POLL_MS 100
#define EJECT_AFTER_ERRORS 3
#define EJECT_MIN_US 1000000
#define EJECT_MAX_US 30000000


static bool parse_hex(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 16);
    if (*end) return false;
    *out = v;
    return true;
}

gw_node *gw_node_by_id(gw_t *g, uint64_t id)
{
    for (size_t i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->id == id) return g->nodes[i];
    return NULL;
}

static void node_close_conns(gw_node *n)
{
    for (size_t p = 0; p < 2; p++)
        for (size_t i = 0; i < GW_MAX_CONNS; i++) {
            if (n->conns[p][i]) rconn_destroy(n->conns[p][i]);
            if (n->ro_conns[p][i]) rconn_destroy(n->ro_conns[p][i]);
            n->conns[p][i] = n->ro_conns[p][i] = NULL;
        }
}

static gw_node *node_upsert(gw_t *g, uint64_t id, const char *addr, uint32_t weight, bool healthy)
{
    gw_node *n = gw_node_by_id(g, id);
    if (!n) {
        n = cairn_calloc(1, sizeof(*n));
        n->id = id;
        n->nconns = (size_t)g->cfg.backend_conns;
        g->nodes = cairn_realloc(g->nodes, (g->nnodes + 1) * sizeof(*g->nodes));
        g->nodes[g->nnodes++] = n;
    }
    if (strcmp(n->addr, addr) != 0) {
        node_close_conns(n);
        snprintf(n->addr, sizeof(n->addr), "%s", addr);
    }
    n->weight = weight ? weight : 1;
    n->mgr_healthy = healthy;
    n->seen = true;
    return n;
}

static void shards_free(gw_t *g)
{
    for (size_t i = 0; i < g->nshards; i++)
        if (g->shards[i].pstate) g->policy->destroy(g->shards[i].pstate);
    cairn_free(g->shards);
    g->shards = NULL;
    g->nshards = 0;
}

static int shard_cmp(const void *a, const void *b)
{
    const gw_shard *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Apply a TOPOLOGY document.  Returns true when it changed anything. */
static bool apply_topology(gw_t *g, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        log_warn("unreadable topology from the manager: %s", jerr.text);
        return false;
    }
    int64_t version = json_integer_value(json_object_get(root, "version"));
    json_t *shards = json_object_get(root, "shards"), *nodes = json_object_get(root, "nodes");
    if (version == g->topo_version && g->ring) {
        /* health may still change without a version bump */
        size_t i;
        json_t *v;
        json_array_foreach(nodes, i, v)
        {
            uint64_t id;
            gw_node *n;
            if (parse_hex(json_string_value(json_object_get(v, "id")), &id) && (n = gw_node_by_id(g, id)))
                n->mgr_healthy = json_is_true(json_object_get(v, "healthy"));
        }
        json_decref(root);
        return false;
    }
    for (size_t i = 0; i < g->nnodes; i++) g->nodes[i]->seen = false;
    size_t i;
    json_t *v;
    json_array_foreach(nodes, i, v)
    {
        uint64_t id;
        const char *addr = json_string_value(json_object_get(v, "addr"));
        if (!parse_hex(json_string_value(json_object_get(v, "id")), &id) || !addr) continue;
        node_upsert(g, id, addr, (uint32_t)json_integer_value(json_object_get(v, "weight")),
                    json_is_true(json_object_get(v, "healthy")));
    }
    shards_free(g);
    size_t ns = json_array_size(shards);
    g->shards = cairn_calloc(ns ? ns : 1, sizeof(*g->shards));
    json_array_foreach(shards, i, v)
    {
        gw_shard *s = &g->shards[g->nshards];
        s->id = (uint32_t)json_integer_value(json_object_get(v, "shard"));
        s->version = (uint64_t)json_integer_value(json_object_get(v, "version"));
        if (!parse_hex(json_string_value(json_object_get(v, "primary")), &s->primary)) continue;
        json_t *addrs = json_object_get(v, "addrs");
        const char *k;
        json_t *a;
        json_object_foreach(addrs, k, a)
        {
            uint64_t id;
            if (parse_hex(k, &id) && json_string_value(a) && !gw_node_by_id(g, id))
                node_upsert(g, id, json_string_value(a), 1, true);
        }
        s->members[s->nmembers++] = s->primary;
        size_t j;
        json_t *sec;
        json_array_foreach(json_object_get(v, "secondaries"), j, sec)
        {
            uint64_t id;
            if (s->nmembers <= GW_MAX_REPLICAS && parse_hex(json_string_value(sec), &id))
                s->members[s->nmembers++] = id;
        }
        policy_backend pb[1 + GW_MAX_REPLICAS];
        for (size_t m = 0; m < s->nmembers; m++) {
            gw_node *n = gw_node_by_id(g, s->members[m]);
            pb[m] = (policy_backend){(uint32_t)m, n ? n->weight : 1};
        }
        s->pstate = g->policy->create(pb, s->nmembers, (uint64_t)clock_us() ^ s->id);
        g->nshards++;
    }
    qsort(g->shards, g->nshards, sizeof(*g->shards), shard_cmp);
    /* Nodes gone from the cluster: close their connections (pending
     * requests fail and are retried elsewhere). */
    for (size_t k = 0; k < g->nnodes;) {
        gw_node *n = g->nodes[k];
        bool member = false;
        for (size_t s = 0; s < g->nshards && !member; s++)
            for (size_t m = 0; m < g->shards[s].nmembers; m++) member |= g->shards[s].members[m] == n->id;
        if (!n->seen && !member) {
            node_close_conns(n);
            cairn_free(n);
            g->nodes[k] = g->nodes[--g->nnodes];
        } else {
            k++;
        }
    }
    ring_shard *rs = cairn_malloc((g->nshards ? g->nshards : 1) * sizeof(*rs));
    for (size_t s = 0; s < g->nshards; s++) rs[s] = (ring_shard){g->shards[s].id, 1};
    if (g->ring) ring_destroy(g->ring);
    g->ring = ring_create(rs, g->nshards, 0);
    cairn_free(rs);
    json_decref(root);
    if (g->topo_version != version)
        log_notice("topology version %" PRId64 ": %zu shards, %zu nodes", version, g->nshards, g->nnodes);
    g->topo_version = version;
    g->topo_changes++;
    return true;
}

static void mgr_rotate(gw_t *g)
{
    if (g->mgr) rconn_destroy(g->mgr);
    g->mgr_idx = (g->mgr_idx + 1) % g->nmgr;
    rconn_opts o = {.connect_timeout_ms = 300, .reply_timeout_ms = 1000};
    g->mgr = rconn_create(g->loop, g->mgrs[g->mgr_idx], &o);
}

static void topo_reply(void *arg, const char *reply, size_t len)
{
    gw_t *g = arg;
    g->topo_inflight = false;
    if (g->stopping) return; /* failed by gw_topology_free: no rotation */
    resp_value *v = NULL;
    size_t used;
    if (!reply || resp_read_value(reply, len, &v, &used) < 0 || v->type == RESP_ERROR) {
        if (!g->topo_failing) {
            g->topo_failing = true;
            log_warn("cannot get the topology from the manager at %s (%.*s); routing on topology "
                     "version %lld meanwhile",
                     g->mgrs[g->mgr_idx], v && v->type == RESP_ERROR ? (int)v->len : 9,
                     v && v->type == RESP_ERROR ? v->s : "no answer", (long long)g->topo_version);
        }
        if (g->nmgr > 1) mgr_rotate(g);
        resp_value_free(v);
        return;
    }
    if (g->topo_failing) {
        g->topo_failing = false;
        log_notice("the manager at %s answers again", g->mgrs[g->mgr_idx]);
    }
    if (v->type == RESP_BULK) {
        g->topo_last_ok_ms = clock_mono_ms();
        apply_topology(g, v->s, v->len);
    }
    resp_value_free(v);
}

static void poll_topology(gw_t *g)
{
    if (g->topo_inflight || !g->mgr || g->stopping) return;
    if (rconn_sendv(g->mgr, topo_reply, g, 2, "CAIRN", "TOPOLOGY") == 0) g->topo_inflight = true;
}

static void on_topo_timer(uv_timer_t *t) { poll_topology(t->data); }

void gw_topology_refresh_soon(gw_t *g) { poll_topology(g); }

void gw_topology_start(gw_t *g)
{
    char *list = cairn_strndup(g->cfg.manager, strlen(g->cfg.manager));
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        g->mgrs = cairn_realloc(g->mgrs, (g->nmgr + 1) * sizeof(*g->mgrs));
        g->mgrs[g->nmgr++] = cairn_strndup(tok, strlen(tok));
    }
    cairn_free(list);
    g->mgr_idx = g->nmgr - 1;
    mgr_rotate(g);
    uv_timer_init(g->loop, &g->topo_timer);
    g->topo_timer.data = g;
    uv_timer_start(&g->topo_timer, on_topo_timer, 0, TOPO_POLL_MS);
}

void gw_topology_free(gw_t *g)
{
    if (g->mgr) rconn_destroy(g->mgr);
    g->mgr = NULL;
    shards_free(g);
    for (size_t i = 0; i < g->nnodes; i++) {
        node_close_conns(g->nodes[i]);
        cairn_free(g->nodes[i]);
    }
    cairn_free(g->nodes);
    g->nodes = NULL;
    g->nnodes = 0;
    if (g->ring) ring_destroy(g->ring);
    g->ring = NULL;
    for (size_t i = 0; i < g->nmgr; i++) cairn_free(g->mgrs[i]);
    cairn_free(g->mgrs);
    g->mgrs = NULL;
}

gw_shard *gw_shard_for_key(gw_t *g, const char *key, size_t len)
{
    if (!g->ring || g->nshards == 0) return NULL;
    uint32_t id = ring_lookup(g->ring, ring_key_hash(key, len));
    for (size_t i = 0; i < g->nshards; i++)
        if (g->shards[i].id == id) return &g->shards[i];
    return NULL;
}

gw_shard *gw_shard_by_index(gw_t *g, size_t i) { return i < g->nshards ? &g->shards[i] : NULL; }

static bool usable(const gw_node *n) { return n && !n->ejected; }

gw_node *gw_pick(gw_t *g, gw_shard *s, bool write, int rp, int *member_idx)
{
    *member_idx = 0;
    gw_node *primary = gw_node_by_id(g, s->primary);
    if (write || rp == READ_PRIMARY || s->nmembers < 2) return primary;
    bool eligible[1 + GW_MAX_REPLICAS] = {false};
    size_t count = 0;
    int64_t now = gw_now_us(g);
    for (size_t m = 0; m < s->nmembers; m++) {
        gw_node *n = gw_node_by_id(g, s->members[m]);
        bool ok = usable(n) && n->mgr_healthy && (m > 0 || rp == READ_ANY);
        eligible[m] = ok;
        count += ok;
        if (ok && g->policy->set_scale)
            g->policy->set_scale(s->pstate, (int)m,
                                 policy_slow_start_factor(n->admitted_at_us, now, g->cfg.slow_start_ms * 1000));
    }
    if (count == 0) return primary; /* no replica to read from: the primary */
    int idx = g->policy->pick(s->pstate, eligible, now);
    if (idx < 0) return primary;
    *member_idx = idx;
    return gw_node_by_id(g, s->members[idx]);
}

#define HELLO3_REQ "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n"
#define READONLY_REQ "*2\r\n$5\r\nCAIRN\r\n$8\r\nREADONLY\r\n"

const char *gw_node_hello(bool ro, int proto, size_t *len, size_t *frames)
{
    static const struct {
        const char *bytes;
        size_t len, frames;
    } hellos[2][2] = { /* [RESP3][read-only] */
        {{NULL, 0, 0}, {READONLY_REQ, sizeof(READONLY_REQ) - 1, 1}},
        {{HELLO3_REQ, sizeof(HELLO3_REQ) - 1, 1},
         {HELLO3_REQ READONLY_REQ, sizeof(HELLO3_REQ READONLY_REQ) - 1, 2}}};
    *len = hellos[proto == 3][ro].len;
    *frames = hellos[proto == 3][ro].frames;
    return hellos[proto == 3][ro].bytes;
}

int gw_node_send(gw_t *g, gw_node *n, bool ro, int proto, uint64_t affinity, const char *req,
                 size_t len, size_t nframes, rconn_reply_cb cb, void *arg)
{
    rconn_t **pool = ro ? n->ro_conns[proto == 3] : n->conns[proto == 3];
    size_t k = (size_t)(affinity % n->nconns);
    if (!pool[k]) {
        rconn_opts o = {.connect_timeout_ms = 500, .reply_timeout_ms = g->cfg.timeout_ms,
                        .max_pending = 1u << 20};
        o.hello = gw_node_hello(ro, proto, &o.hello_len, &o.hello_frames);
        pool[k] = rconn_create(g->loop, n->addr, &o);
        if (!pool[k]) return -1;
    }
    int rc = rconn_send_raw_n(pool[k], req, len, nframes, cb, arg);
    if (rc == 0) {
        n->requests++;
        n->outstanding++;
    }
    return rc;
}

void gw_node_done(gw_t *g, gw_shard *s, int member_idx, gw_node *n, int64_t latency_us, bool ok)
{
    n->outstanding--;
    if (latency_us < 1) latency_us = 1;
    int b = 0;
    while (b < GW_HIST - 1 && (1LL << (b + 1)) <= latency_us) b++;
    n->hist[b]++;
    if (s && s->pstate && member_idx >= 0 && (size_t)member_idx < s->nmembers &&
        s->members[member_idx] == n->id)
        g->policy->on_done(s->pstate, member_idx, latency_us, ok, gw_now_us(g));
    if (ok) {
        n->consecutive_errors = 0;
        return;
    }
    n->errors++;
    if (++n->consecutive_errors >= EJECT_AFTER_ERRORS && !n->ejected) {
        n->eject_backoff_us = n->eject_backoff_us ? n->eject_backoff_us * 2 : EJECT_MIN_US;
        if (n->eject_backoff_us > EJECT_MAX_US) n->eject_backoff_us = EJECT_MAX_US;
        n->ejected = true;
        n->ejected_until_us = gw_now_us(g) + n->eject_backoff_us;
        log_warn("node %s ejected after %d consecutive errors (probe in %lld ms)", n->addr,
                 n->consecutive_errors, (long long)(n->eject_backoff_us / 1000));
    }
}

struct probe {
    gw_t *g;
    uint64_t id;
};

static void probe_reply(void *arg, const char *reply, size_t len)
{
    struct probe *p = arg;
    gw_node *n = gw_node_by_id(p->g, p->id);
    if (n) {
        n->outstanding--;
        if (reply && len >= 5 && memcmp(reply, "+PONG", 5) == 0) {
            n->ejected = false;
            n->consecutive_errors = 0;
            n->admitted_at_us = gw_now_us(p->g); /* slow start from here */
            log_notice("node %s answers again: re-admitted with slow start", n->addr);
        } else {
            n->eject_backoff_us = n->eject_backoff_us * 2 > EJECT_MAX_US ? EJECT_MAX_US : n->eject_backoff_us * 2;
            n->ejected_until_us = gw_now_us(p->g) + n->eject_backoff_us;
        }
    }
    cairn_free(p);
}

void gw_health_tick(gw_t *g)
{
    int64_t now = gw_now_us(g);
    for (size_t i = 0; i < g->nnodes; i++) {
        gw_node *n = g->nodes[i];
        if (!n->ejected || now < n->ejected_until_us) continue;
        n->ejected_until_us = now + EJECT_MAX_US; /* one probe at a time */
        struct probe *p = cairn_malloc(sizeof(*p));
        p->g = g;
        p->id = n->id;
        static const char ping[] = "*1\r\n$4\r\nPING\r\n";
        /* Probes speak RESP2 (they look for +PONG), on the RESP2 pool. */
        if (gw_node_send(g, n, false, 2, 0, ping, sizeof(ping) - 1, 1, probe_reply, p) < 0) cairn_free(p);
    }
}

static int64_t percentile(const gw_node *n, double q)
{
    uint64_t total = 0, acc = 0;
    for (int b = 0; b < GW_HIST; b++) total += n->hist[b];
    if (!total) return 0;
    for (int b = 0; b < GW_HIST; b++) {
        acc += n->hist[b];
        if ((double)acc >= q * (double)total) return 1LL << (b + 1);
    }
    return 1LL << GW_HIST;
}

void gw_info_cluster(gw_t *g, cairn_buf *b)
{
    char line[512];
    int l = snprintf(line, sizeof(line),
                     "topology_version:%" PRId64 "\r\ntopology_age_ms:%lld\r\nmanager:%s\r\nshards:%zu\r\nnodes:%zu\r\n",
                     g->topo_version, (long long)(g->topo_last_ok_ms ? clock_mono_ms() - g->topo_last_ok_ms : -1),
                     g->nmgr ? g->mgrs[g->mgr_idx] : "-", g->nshards, g->nnodes);
    buf_append(b, line, (size_t)l);
    for (size_t i = 0; i < g->nshards; i++) {
        gw_shard *s = &g->shards[i];
        gw_node *p = gw_node_by_id(g, s->primary);
        l = snprintf(line, sizeof(line), "shard%" PRIu32 ":version=%" PRIu64 ",primary=%s,replicas=%zu\r\n",
                     s->id, s->version, p ? p->addr : "-", s->nmembers);
        buf_append(b, line, (size_t)l);
    }
    for (size_t i = 0; i < g->nnodes; i++) {
        gw_node *n = g->nodes[i];
        l = snprintf(line, sizeof(line),
                     "node:id=%016" PRIx64 ",addr=%s,weight=%" PRIu32 ",requests=%" PRIu64
                     ",errors=%" PRIu64 ",outstanding=%lld,p50_us=%lld,p99_us=%lld,ejected=%d,healthy=%d\r\n",
                     n->id, n->addr, n->weight, n->requests, n->errors, (long long)n->outstanding,
                     (long long)percentile(n, 0.5), (long long)percentile(n, 0.99), n->ejected,
                     n->mgr_healthy);
        buf_append(b, line, (size_t)l);
    }
}

int64_t gw_node_latency_us(const gw_node *n, double q) { return percentile(n, q); }
