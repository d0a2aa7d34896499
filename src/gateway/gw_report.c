/*
 * gw_report.c — the gateway's per-node statistics, reported to the active
 * manager about once a second so that `cairn ctl status` shows them next to
 * the cluster (the manager's side, and the report's fields: manager/gwreport.h).
 *
 *   timer (GW_REPORT_MS) -> report_tick: previous report answered?
 *     -> gw_report_encode -> CAIRN GATEWAY-REPORT <id> <listen addr> <json>
 *        on the topology poller's connection (g->mgr, which already follows
 *        the active manager) -> report_reply: forget it
 *
 * Best effort by design: no manager, a standby's -NOTACTIVE, a refusal or a
 * broken connection only skips this report (nothing is logged, nothing
 * waits).  The manager forgets a gateway whose reports stop, so a dead
 * gateway leaves `ctl status` by itself.
 *
 * The id is made once per process: "<hostname>:<port>-<pid>", unique among
 * gateways running side by side and new at every restart.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gateway/gw.h"
#include "lib/mem.h"
#include "lib/util.h"

#define GW_REPORT_MS 1000
#define GW_REPORT_NODES_MAX 1024 /* the manager refuses more (GWREP_NODES_MAX) */

/* One report on the wire.  Its reply may come after gw_report_stop (the
 * connection belongs to the topology poller), so it points back at the
 * reporter only while the reporter lives. */
typedef struct report_ticket {
    gw_report *rep;
} report_ticket;

struct gw_report {
    gw_t *g;
    uv_timer_t timer;
    report_ticket *inflight; /* the unanswered report, or NULL */
    char id[128];
    char addr[320];
};

/* ---- encoding ------------------------------------------------------------- */

static json_t *node_json(gw_t *g, const gw_node *n, int64_t now_ms)
{
    const char *role = "none";
    uint32_t shard = 0;
    for (size_t i = 0; i < g->nshards && shard == 0; i++) {
        const gw_shard *s = &g->shards[i];
        for (size_t m = 0; m < s->nmembers; m++)
            if (s->members[m] == n->id) {
                role = m == 0 ? "primary" : "secondary";
                shard = s->id;
                break;
            }
    }
    char id[17];
    snprintf(id, sizeof(id), "%016" PRIx64, n->id);
    int64_t ramp_us = g->cfg.slow_start_ms * 1000;
    bool slow = !n->ejected && n->admitted_at_us > 0 && now_ms * 1000 - n->admitted_at_us < ramp_us;
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(id));
    json_object_set_new(o, "addr", json_string(n->addr));
    json_object_set_new(o, "shard", json_integer(shard));
    json_object_set_new(o, "role", json_string(role));
    json_object_set_new(o, "requests", json_integer((json_int_t)n->requests));
    json_object_set_new(o, "errors", json_integer((json_int_t)n->errors));
    json_object_set_new(o, "retries", json_integer((json_int_t)n->retries));
    json_object_set_new(o, "outstanding", json_integer(n->outstanding));
    json_object_set_new(o, "p50_us", json_integer(gw_node_latency_us(n, 0.5)));
    json_object_set_new(o, "p99_us", json_integer(gw_node_latency_us(n, 0.99)));
    json_object_set_new(o, "p999_us", json_integer(gw_node_latency_us(n, 0.999)));
    json_object_set_new(o, "ejected", json_boolean(n->ejected));
    json_object_set_new(o, "slow_start", json_boolean(slow));
    json_object_set_new(o, "healthy", json_boolean(n->mgr_healthy));
    return o;
}

void gw_report_encode(gw_t *g, int64_t now_ms, cairn_buf *out)
{
    json_t *o = json_object();
    json_object_set_new(o, "pid", json_integer((json_int_t)getpid()));
    json_object_set_new(o, "uptime_s", json_integer((clock_ms() - g->start_ms) / 1000));
    json_object_set_new(o, "topology_version", json_integer(g->topo_version));
    json_object_set_new(o, "clients", json_integer((json_int_t)g->nclients));
    json_object_set_new(o, "commands", json_integer((json_int_t)g->commands));
    json_object_set_new(o, "connections", json_integer((json_int_t)g->connections));
    json_object_set_new(o, "errors", json_integer((json_int_t)g->errors));
    json_object_set_new(o, "retried", json_integer((json_int_t)g->retried));
    json_t *nodes = json_array();
    for (size_t i = 0; i < g->nnodes && i < GW_REPORT_NODES_MAX; i++)
        json_array_append_new(nodes, node_json(g, g->nodes[i], now_ms));
    json_object_set_new(o, "nodes", nodes);
    char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (text) buf_append_str(out, text);
    free(text);
    json_decref(o);
}

/* ---- sending -------------------------------------------------------------- */

static void report_reply(void *arg, const char *reply, size_t len)
{
    (void)reply;
    (void)len;
    report_ticket *t = arg;
    if (t->rep) t->rep->inflight = NULL;
    cairn_free(t);
}

static void report_tick(uv_timer_t *timer)
{
    gw_report *rep = timer->data;
    gw_t *g = rep->g;
    if (rep->inflight || !g->mgr || g->stopping) return;
    cairn_buf b;
    buf_init(&b);
    gw_report_encode(g, clock_mono_ms(), &b);
    report_ticket *t = cairn_malloc(sizeof(*t));
    t->rep = rep;
    const char *argv[] = {"CAIRN", "GATEWAY-REPORT", rep->id, rep->addr, b.data};
    size_t lens[] = {5, 14, strlen(rep->id), strlen(rep->addr), b.len};
    if (b.len > 0 && rconn_send(g->mgr, 5, argv, lens, report_reply, t) == 0) rep->inflight = t;
    else cairn_free(t);
    buf_close(&b);
}

/* A hostname as an id part: printable bytes other than space and '"'. */
static void host_part(char *out, size_t len)
{
    char h[64] = "";
    if (gethostname(h, sizeof(h) - 1) != 0 || !h[0]) snprintf(h, sizeof(h), "gateway");
    size_t k = 0;
    for (size_t i = 0; h[i] && k + 1 < len; i++) {
        unsigned char c = (unsigned char)h[i];
        if (c > ' ' && c < 0x7f && c != '"' && c != ':') out[k++] = (char)c;
    }
    out[k] = '\0';
}

gw_report *gw_report_start(gw_t *g)
{
    gw_report *rep = cairn_calloc(1, sizeof(*rep));
    rep->g = g;
    char host[64];
    host_part(host, sizeof(host));
    snprintf(rep->id, sizeof(rep->id), "%s:%lld-%d", host, (long long)g->cfg.port, (int)getpid());
    snprintf(rep->addr, sizeof(rep->addr), "%s:%lld", g->cfg.bind, (long long)g->cfg.port);
    uv_timer_init(g->loop, &rep->timer);
    rep->timer.data = rep;
    uv_timer_start(&rep->timer, report_tick, GW_REPORT_MS, GW_REPORT_MS);
    return rep;
}

static void on_timer_closed(uv_handle_t *h) { cairn_free(h->data); }

void gw_report_stop(gw_report *rep)
{
    if (!rep) return;
    if (rep->inflight) rep->inflight->rep = NULL;
    rep->inflight = NULL;
    uv_close((uv_handle_t *)&rep->timer, on_timer_closed);
}
