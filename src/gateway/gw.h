/*
 * gw.h — the gateway: one Redis endpoint in front of the whole cluster.
 *
 * Flow of a request:
 *
 *   gw_client.c  read -> resp_parse_request -> route():
 *                  local command (PING, INFO, ...)  -> reply now
 *                  one key / keys of one shard      -> one backend request
 *                  keys of many shards (MGET ...)   -> one request per shard,
 *                                                      merged in key order
 *                  all shards (DBSIZE, KEYS, SCAN)  -> fan out, merge
 *   gw_backend.c pick a node of the shard (primary; a replica by read policy
 *                and scheduling policy) -> rconn (pipelined, shared by all
 *                clients) -> reply frame -> the client's slot
 *   gw_client.c  replies leave in request order (a queue of slots)
 *
 * Retries: a request refused before execution (NOTPRIMARY, TRYAGAIN,
 * CLUSTERDOWN, or never written to the socket) is retried after the
 * topology refreshes, until `retry-ms`; a read whose connection broke is
 * retried too; a write whose outcome is unknown is never re-sent (the
 * client gets an error saying so), so no write is applied twice.
 */
#ifndef CAIRN_GW_H
#define CAIRN_GW_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "gateway/gw_config.h"
#include "lib/buf.h"
#include "lib/policy.h"
#include "lib/resp.h"
#include "lib/ring.h"
#include "lib/util.h"
#include "net/rconn.h"

#define GW_MAX_CONNS 8
#define GW_MAX_REPLICAS 8
#define GW_HIST 40 /* latency histogram buckets: [2^i, 2^(i+1)) microseconds */

typedef struct gw gw_t;
typedef struct gw_client gw_client;

enum gw_read_policy { READ_PRIMARY, READ_REPLICA, READ_PREFER_REPLICA, READ_ANY };

typedef struct gw_node {
    uint64_t id;
    char addr[80];
    uint32_t weight;
    bool mgr_healthy;     /* the manager's view */
    /* Pooled connections, by the protocol they speak ([0] RESP2, [1]
     * RESP3: opened with HELLO 3): a connection never mixes protocols, so
     * a node's replies are forwarded to each client as they come. */
    rconn_t *conns[2][GW_MAX_CONNS];    /* read-write connections */
    rconn_t *ro_conns[2][GW_MAX_CONNS]; /* CAIRN READONLY connections (replica reads) */
    size_t nconns, rr;
    /* stats */
    uint64_t requests, errors, retries;
    int64_t outstanding;
    uint64_t hist[GW_HIST];
    /* health: passive ejection, probes, slow start */
    int consecutive_errors;
    int64_t ejected_until_us, eject_backoff_us, admitted_at_us;
    bool ejected, seen;
} gw_node;

typedef struct gw_shard {
    uint32_t id;
    uint64_t version;
    uint64_t primary;
    uint64_t members[1 + GW_MAX_REPLICAS]; /* [0] = primary, then secondaries */
    size_t nmembers;
    void *pstate;                          /* policy state over members */
} gw_shard;

struct gw {
    uv_loop_t *loop;
    gw_config cfg;
    const policy_ops *policy;
    int read_policy;
    /* topology */
    gw_node **nodes;
    size_t nnodes;
    gw_shard *shards;
    size_t nshards;
    ring_t *ring;
    int64_t topo_version;
    char **mgrs;
    size_t nmgr, mgr_idx;
    rconn_t *mgr;
    bool topo_inflight;
    bool topo_failing; /* the last topology poll failed (logged once per outage) */
    int64_t topo_last_ok_ms, topo_changes;
    /* clients */
    uv_tcp_t listener;
    gw_client *clients;
    size_t nclients;
    uint64_t next_client_id;
    char *readbuf;
    /* timers and signals */
    uv_timer_t tick, topo_timer;
    uv_signal_t sigterm, sigint;
    /* clients with replies to write at the end of this loop turn */
    gw_client *dirty;
    uv_prepare_t wprep;
    /* retries waiting for their time */
    struct gw_req *retry_head, *retry_tail;
    /* recycled slots and requests (gw_client.c), a bounded number */
    struct gw_slot *free_slots;
    struct gw_req *free_reqs;
    size_t nfree_slots, nfree_reqs;
    /* The loop turn's clock (gw_now_us): read once after each poll, not
     * once per request; cleared before and after every poll. */
    int64_t now_us;
    uv_prepare_t clock_prep;
    uv_check_t clock_check;
    /* stats */
    uint64_t commands, connections, cross_shard, retried, failed_unknown, errors;
    int64_t start_ms;
    bool stopping;
};

/* Monotonic microseconds, read at most once per loop turn: events of one
 * poll share one timestamp (when they were seen ready). */
static inline int64_t gw_now_us(gw_t *g)
{
    if (!g->now_us) g->now_us = clock_mono_us();
    return g->now_us;
}
static inline int64_t gw_now_ms(gw_t *g) { return gw_now_us(g) / 1000; }

/* ---- gw_backend.c ---- */
void gw_topology_start(gw_t *g);
void gw_topology_refresh_soon(gw_t *g);
void gw_topology_free(gw_t *g);
gw_shard *gw_shard_for_key(gw_t *g, const char *key, size_t len);
gw_shard *gw_shard_by_index(gw_t *g, size_t i);
gw_node *gw_node_by_id(gw_t *g, uint64_t id);
/* Choose a node of `s` for a request: the primary for writes and primary
 * reads, else by read policy + scheduling policy among healthy members.
 * *member_idx is the index in s->members (for policy reporting). */
gw_node *gw_pick(gw_t *g, gw_shard *s, bool write, int read_policy, int *member_idx);
/* Send raw request bytes to node n (read-only connection when ro). */
/* `affinity` picks the connection (a client's id): one client's requests
 * to a node always share a connection, so they execute in order. */
/* `nframes` > 1: the bytes hold that many requests answered together (a
 * MULTI ... EXEC block); the callback gets all their replies as one span. */
/* `proto` (2 or 3) picks the pool: the reply comes in that protocol. */
int gw_node_send(gw_t *g, gw_node *n, bool ro, int proto, uint64_t affinity, const char *req,
                 size_t len, size_t nframes, rconn_reply_cb cb, void *arg);
/* The requests a connection to a node sends first (their replies are
 * swallowed) for protocol `proto`, read-only or not: *frames of them, or
 * NULL when there are none (RESP2 read-write). */
const char *gw_node_hello(bool ro, int proto, size_t *len, size_t *frames);
void gw_node_done(gw_t *g, gw_shard *s, int member_idx, gw_node *n, int64_t latency_us, bool ok);
void gw_health_tick(gw_t *g);
void gw_info_cluster(gw_t *g, cairn_buf *b);

/* ---- gw_client.c ---- */
int gw_listen(gw_t *g);
void gw_clients_close(gw_t *g);
void gw_retry_tick(gw_t *g);
void gw_retry_drop_all(gw_t *g);
/* Free the recycled slots and requests (at exit). */
void gw_pools_free(gw_t *g);
int gateway_main(int argc, char **argv);

/* ---- gw_report.c: per-node statistics to the active manager (ctl status) ---- */
typedef struct gw_report gw_report;
/* Start reporting every second; the reporter lives until gw_report_stop. */
gw_report *gw_report_start(gw_t *g);
/* Stop (before the loop's last run: the timer closes there).  NULL is fine. */
void gw_report_stop(gw_report *rep);
/* Append the report document (manager/gwreport.h) to out, at now_ms on
 * clock_mono_ms(). */
void gw_report_encode(gw_t *g, int64_t now_ms, cairn_buf *out);
/* gw_backend.c: node n's latency quantile q (0..1) in microseconds, the
 * upper bound of its histogram bucket; 0 before any reply. */
int64_t gw_node_latency_us(const gw_node *n, double q);

#endif
