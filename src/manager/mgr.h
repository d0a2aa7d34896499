/*
 * mgr.h — the manager process's context, shared by manager.c (start-up,
 * timers, etcd) and mgr_cmd.c (the RESP commands).  Nothing outside
 * src/manager/ includes it; the entry point is manager.h.
 *
 * Flow of one request that changes a configuration:
 *
 *   rserver (read, parse) -> mgr_handle (mgr_cmd.c): acting? arguments
 *     -> placement.c decides from mstate's cache            (pure)
 *     -> mgr_shard_cas (manager.c): etcd compare-and-swap on mod_revision
 *          won:  cache updated, change logged, config replied
 *          lost: cache refreshed from the swap's answer, decide again
 *
 * etcd keys (P = /cairn/<cluster>/):
 *   P manager/leader    {"id","addr"} on the active manager's lease
 *   P nodes/<16 hex>    registry record (mjson.h)
 *   P shards/<n>        configuration (mjson.h)
 */
#ifndef CAIRN_MGR_H
#define CAIRN_MGR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/etcd.h"
#include "lib/resp.h"
#include "manager/election.h"
#include "manager/gwreport.h"
#include "manager/mgr_config.h"
#include "manager/mstate.h"
#include "manager/rserver.h"

#define MGR_TICK_MS 100   /* election, state load */
#define MGR_REPAIR_MS 200 /* re-replication check */

typedef struct mgr_swo mgr_swo; /* a switchover in progress (mgr_switchover.c) */

typedef struct mgr {
    mgr_config cfg;
    uv_loop_t *loop;
    etcd_t *etcd;
    elect el;
    mstate st;
    gwrep_table gws;      /* gateways' latest reports (memory only) */
    rserver_t *srv;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint;
    char id[65];
    char addr[300];       /* bind:port, what others are told */
    char prefix[128];     /* "/cairn/<cluster>/" */
    char leader_key[160];
    char leader_val[512];
    uint64_t loaded_term; /* election term whose state is in `st`; 0 = none */
    int64_t next_repair;
    int64_t next_reload;  /* rate limit for reloads a heartbeat asks for */
    int64_t start_ms;
    mgr_swo *swos;        /* switchovers in progress */
    bool stopping;
} mgr_t;

/* Monotonic ms: the one clock for health, leases and deadlines. */
int64_t mgr_now(void);

/* True while this manager is the active one and its cache is loaded. */
bool mgr_acting(const mgr_t *m);

/* Compare-and-swap shard next->cfg.shard in etcd from `expect_mod`
 * (0 = must not exist).  1: written, cache updated.  0: someone else's
 * write won; the cache now holds etcd's current configuration.  < 0: etcd
 * failed (cache unchanged); *why gets etcd's message. */
int mgr_shard_cas(mgr_t *m, const pl_shard *next, int64_t expect_mod, const char **why);
/* Re-read one shard into the cache.  0 or < 0. */
int mgr_shard_reload(mgr_t *m, uint32_t shard);
/* Re-read every shard (after a lost create).  0 or < 0. */
int mgr_shards_reload(mgr_t *m);
/* Write a node's registry record by compare-and-swap (re-reading and
 * retrying once on a lost swap).  0 or < 0. */
int mgr_node_store(mgr_t *m, mstate_node *n);
/* Log a configuration change: old (NULL for a new shard) -> next. */
void mgr_log_change(const pl_shard *old, const pl_shard *next, const char *why);

/* Shut down (SHUTDOWN, signals): resign, close, end the loop. */
void mgr_stop(mgr_t *m);

/* SWITCHOVER of row's shard to next (pl_switchover's decision), called by
 * the SWITCHOVER handler: when the primary can drain (it says so in its
 * heartbeats, and is healthy), start the hand-over, defer the reply
 * (rserver_defer) and return true; the reply comes when the job ends.
 * False: nothing started (the caller writes the configuration at once). */
bool mgr_switchover_start(mgr_t *m, const mstate_shard *row, const pl_shard *next);
/* A switchover of `shard` is in progress. */
bool mgr_switchover_busy(const mgr_t *m, uint32_t shard);
/* Give every switchover up (the manager stops): primaries are told to
 * resume, deferred replies answered with an error. */
void mgr_switchover_stop_all(mgr_t *m);

/* The rserver handler (mgr_cmd.c). */
enum rserver_action mgr_handle(void *arg, const char *peer, size_t argc, const resp_arg *argv,
                               cairn_buf *out);

#endif
