/*
 * mstate.h — the active manager's picture of the cluster, in memory.
 *
 * Two tables, each row remembering the etcd mod_revision it was read or
 * written at (the expectation for the next compare-and-swap):
 *
 *   nodes   registry record (id, addr, zone, weight) as stored in etcd,
 *           plus health that lives only here: when the node last
 *           heartbeated and the positions it reported
 *   shards  configurations, sorted by shard number
 *
 * etcd is the truth; these are a cache that the manager (manager.c) fills
 * when it becomes active and updates after each successful swap.  Pure: no
 * etcd, no clock (times are arguments, ms on one monotonic clock), so the
 * JSON it renders is testable.
 *
 * Weight: a node's heartbeat sets its weight only when it first registers;
 * afterwards the registry's weight is the operator's (CAIRN NODE-WEIGHT).
 */
#ifndef CAIRN_MSTATE_H
#define CAIRN_MSTATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/mjson.h"
#include "manager/placement.h"

typedef struct mstate_node {
    mjson_node info;   /* the record as it should be in etcd */
    int64_t mod_rev;   /* etcd mod_revision of the record; 0 = not in etcd */
    bool stored;       /* etcd holds exactly `info` */
    int64_t store_retry_at; /* after a failed write: not before this (manager's) */
    /* health, from heartbeats (see pl_node for `seen` / `last_seen`) */
    bool seen;
    int64_t last_seen;
    uint32_t shard;    /* as reported: what the node believes */
    uint64_t version;
    enum repl_role role;
    uint64_t last_lsn, durable_lsn, commit_lsn;
    uint64_t floor; /* as reported: it acts at no version up to this */
    bool can_drain; /* as reported: it takes CAIRN DRAIN (a switchover hands over) */
    /* restart detection (manager's, this term): the last non-zero version
     * the node reported, and the version given to it as a restarted lone
     * primary (so a node that never adopts it is not bumped again) */
    uint64_t acked;
    uint64_t restart_bump;
} mstate_node;

typedef struct mstate_shard {
    pl_shard s;
    int64_t mod_rev;
    int64_t all_restarted_at; /* when the manager last re-issued it for a
                                 whole-group restart (members need a moment
                                 to adopt the new version) */
} mstate_shard;

typedef struct mstate {
    mstate_node *nodes;
    size_t nnodes, capnodes;
    mstate_shard *shards; /* sorted by s.cfg.shard */
    size_t nshards, capshards;
    /* scratch for mstate_view() */
    pl_node *vnodes;
    pl_shard *vshards;
} mstate;

void mstate_init(mstate *st);
void mstate_close(mstate *st);
/* Forget every node and shard (before a reload). */
void mstate_clear(mstate *st);

/* Row pointers stay valid until the next call that adds a row. */
mstate_node *mstate_node_find(mstate *st, uint64_t id);
/* The node whose address is addr (the first registered), or NULL. */
mstate_node *mstate_node_find_addr(mstate *st, const char *addr);
/* A node given as 16-hex id or as its "host:port". */
mstate_node *mstate_node_lookup(mstate *st, const char *s, size_t n);
/* Record a node as read from or written to etcd (stored = true).  A new
 * row starts unseen with last_seen = now; an existing row keeps its
 * health. */
mstate_node *mstate_node_put(mstate *st, const mjson_node *info, int64_t mod_rev, int64_t now);

/* Apply a heartbeat at `now`: health and positions, and the registration.
 * Returns the row; *must_store is set when etcd must be written (new node,
 * changed addr or zone, or an earlier write that failed). */
mstate_node *mstate_heartbeat(mstate *st, const mjson_heartbeat *hb, int64_t now,
                              bool *must_store);
/* Every node becomes unseen, silent since `now` (on becoming active: the
 * clock for "silent for 3 s" starts now, not at the last heartbeat some
 * earlier term saw). */
void mstate_reset_health(mstate *st, int64_t now);

mstate_shard *mstate_shard_find(mstate *st, uint32_t shard);
/* Insert or replace shard s->cfg.shard.  Returns the row. */
mstate_shard *mstate_shard_put(mstate *st, const pl_shard *s, int64_t mod_rev);
/* The shard whose configuration has `id` as a member, or NULL. */
mstate_shard *mstate_shard_of(mstate *st, uint64_t id);

/* Fill v with every node and shard, at `now`.  The arrays are owned by st
 * and valid until the next mstate_* call that changes st. */
void mstate_view(mstate *st, int64_t now, pl_view *v);

/* The largest etcd mod_revision of any row: changes whenever a node record
 * or a configuration changes, and is the same on every manager reading the
 * same etcd (TOPOLOGY's "version"). */
int64_t mstate_revision(const mstate *st);

/* JSON renderings (new references).
 *   config:    the shard document plus "addrs":{"<id>":"host:port"} for
 *              every member the registry knows
 *   status:    {"manager":<manager>,"nodes":[..],"shards":[config+"lag"]}
 *              (manager is stolen: pass a new reference)
 *   topology:  {"version":rev,"shards":[config],"nodes":[{id,addr,weight,healthy}]} */
json_t *mstate_config_json(mstate *st, const pl_shard *s);
json_t *mstate_status_json(mstate *st, int64_t now, json_t *manager);
json_t *mstate_topology_json(mstate *st, int64_t now);

/* True when the node heartbeated within PL_UNHEALTHY_MS of now. */
bool mstate_node_healthy(const mstate_node *n, int64_t now);

#endif
