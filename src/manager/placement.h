/*
 * placement.h — the manager's decisions, as pure functions.
 *
 * Every change the active manager makes to a shard configuration is decided
 * here, from the current configuration, a snapshot of the node registry with
 * its health, and the request.  Nothing here touches etcd, a socket or the
 * clock (the time arrives in the view), so every branch is unit-tested
 * (tests/unit/test_placement.c).  The manager writes a CHANGED result to
 * etcd by compare-and-swap and, when the swap loses, calls again with the
 * configuration it lost to.
 *
 *   request                        decided by        result (new version = old + 1)
 *   ----------------------------   ---------------   --------------------------------------
 *   REMOVE  secondary|learner      pl_remove         primary drops the victim
 *   REMOVE  primary                pl_remove         requesting secondary becomes primary
 *   PROMOTE learner                pl_promote        learner joins the secondaries
 *   SHARD-CREATE replicas          pl_create         new shard (version 1) on spare nodes
 *   SWITCHOVER [target]            pl_switchover     target primary, old primary secondary
 *                                                    (written once the old primary has
 *                                                    drained: handover.h)
 *   (every 200 ms)                 pl_repair         drop a dead learner / add a spare learner
 *   HEARTBEAT of a restarted lone primary
 *                                  pl_restarted      same members, new version
 *
 * Invariants kept here (DESIGN.md "Replication"):
 *  1. Configurations change only from version v to v + 1, and only when the
 *     request names v: a request for an older version gets the current
 *     configuration back (PL_CURRENT), never a change.
 *  5. A new primary is always a member (primary or secondary) of the last
 *     configuration: REMOVE promotes the requesting secondary, SWITCHOVER
 *     only a secondary.  A learner never becomes primary.
 *  P. A node belongs to at most one shard, and to one role in it (asserted
 *     by pl_shard_valid on every result).
 */
#ifndef CAIRN_PLACEMENT_H
#define CAIRN_PLACEMENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/repl.h"

/* A spare is picked only if it heartbeated within this many ms. */
#define PL_SPARE_FRESH_MS 1000
/* A node silent for longer is unhealthy (STATUS); a learner silent for
 * longer is dropped from its shard by pl_repair. */
#define PL_UNHEALTHY_MS 3000

/* A shard: its configuration (lib/repl.h, the nodes' own type) and the
 * number of replicas it should have (primary + secondaries + learners). */
typedef struct pl_shard {
    repl_config cfg;
    uint32_t replicas;
} pl_shard;

/* One registered node, as the decisions see it.  `last_seen` is on the
 * same clock as pl_view.now; a node not heard from since this manager
 * became active has seen = false and last_seen = the time it became active
 * (so "silent for 3 s" counts from then, not from the epoch). */
typedef struct pl_node {
    uint64_t id;
    const char *zone; /* "" when the node gave none; never NULL */
    int64_t weight;
    bool seen;
    int64_t last_seen;
    uint64_t last_lsn; /* as last reported */
    uint64_t reported_version; /* configuration version in its last heartbeat */
    uint64_t floor;            /* it acts at no version up to this (restarted) */
} pl_node;

/* Everything a decision may look at.  Arrays are borrowed for the call. */
typedef struct pl_view {
    const pl_shard *shards;
    size_t nshards;
    const pl_node *nodes;
    size_t nnodes;
    int64_t now;
} pl_view;

#define PL_RESULT_MAP(X)                                                                  \
    X(CHANGED, "changed")   /* *out holds the new configuration (version + 1) */          \
    X(CURRENT, "current")   /* the request named an older version: reply the current */  \
    X(NOCHANGE, "nochange") /* nothing to do (pl_repair) */                               \
    X(REFUSED, "refused")   /* err holds the reason; *out untouched */

typedef enum pl_result {
#define PL_RESULT_ENUM(name, text) PL_##name,
    PL_RESULT_MAP(PL_RESULT_ENUM)
#undef PL_RESULT_ENUM
} pl_result;

/* Static name of r ("changed", ...). */
const char *pl_result_name(pl_result r);

/* The role of `id` in cfg (REPL_NONE if not a member). */
enum repl_role pl_role(const repl_config *cfg, uint64_t id);
/* The shard number `id` belongs to in the view, or 0. */
uint32_t pl_node_shard(const pl_view *v, uint64_t id);
/* The registry entry for id, or NULL.  Points into v->nodes. */
const pl_node *pl_node_find(const pl_view *v, uint64_t id);
/* True if the node heartbeated within `within_ms` of v->now. */
bool pl_node_fresh(const pl_view *v, const pl_node *n, int64_t within_ms);
/* True if s is well formed: shard > 0, version > 0, a primary, counts within
 * REPL_MAX_MEMBERS, no id twice (invariant P), 1 <= replicas. */
bool pl_shard_valid(const pl_shard *s);

/* REMOVE: `requester` asks for a configuration of `cur` without `victim`,
 * naming the version it holds.
 *   version < current             -> PL_CURRENT
 *   requester primary, victim a secondary or learner
 *                                 -> PL_CHANGED: victim dropped
 *   requester secondary, victim the primary
 *                                 -> PL_CHANGED: primary = requester,
 *                                    secondaries = the others (invariant 5)
 *   anything else (newer version, non-members, a learner asking, ...)
 *                                 -> PL_REFUSED with the reason in err. */
pl_result pl_remove(const pl_shard *cur, uint64_t version, uint64_t victim, uint64_t requester,
                    pl_shard *out, char *err, size_t errlen);

/* PROMOTE: the primary asks that caught-up `learner` join the secondaries.
 * PL_CURRENT for an older version; PL_REFUSED unless requester is the
 * primary and learner a learner. */
pl_result pl_promote(const pl_shard *cur, uint64_t version, uint64_t learner, uint64_t requester,
                     pl_shard *out, char *err, size_t errlen);

/* SHARD-CREATE: `replicas` spare nodes (fresh within PL_SPARE_FRESH_MS, in
 * no shard), spread over distinct zones as far as the spares allow (a node
 * without a zone conflicts with none); the first picked is the primary.
 * Among equals the lowest id wins, so the choice is deterministic.  The
 * shard number is one more than the largest in the view; version 1.
 * PL_REFUSED: replicas outside 1..REPL_MAX_MEMBERS, or
 * "not enough spare nodes: need N, have M". */
pl_result pl_create(const pl_view *v, uint32_t replicas, pl_shard *out, char *err, size_t errlen);

/* SWITCHOVER: move the primary role of `cur` to `target`, or when target is
 * 0 to the most caught-up healthy secondary (highest reported last_lsn,
 * then the first listed).  The old primary becomes the first secondary.
 * PL_REFUSED when the target is not a secondary (the primary itself, a
 * learner, a stranger), is unhealthy (silent > PL_UNHEALTHY_MS), or there is
 * no healthy secondary to pick. */
pl_result pl_switchover(const pl_view *v, const pl_shard *cur, uint64_t target, pl_shard *out,
                        char *err, size_t errlen);

/* A heartbeat from `node` reporting configuration version `reported`.  A
 * node restarted without a configuration reports 0; the replication layer
 * will not act as primary again of a version it already holds entries of
 * (lib/repl.h), so a restarted primary needs a new version.  Only when it
 * is the sole voting member (no secondaries) does the manager give it one:
 * its durable log then holds every committed write (commit = its own
 * durable LSN).  With secondaries, they notice the silent primary and ask
 * to replace it (invariant 4), which is the safe path: the new primary is
 * one of them (invariant 5).
 * PL_CHANGED with *out = cur at version + 1, or PL_NOCHANGE. */
pl_result pl_restarted(const pl_shard *cur, uint64_t node, uint64_t reported, pl_shard *out);

/* Every voting member (primary and secondaries) restarted: each heartbeats
 * (within the last second) reporting no configuration and a floor at or
 * above the current version.  None of them will act at the current version
 * again (lib/repl.h's floor), and none is left
 * to ask for a replacement, so the manager issues the next version.  Every
 * committed write is durable on every member, so the member with the
 * longest log holds them all: it becomes primary (the current primary on a
 * tie), the others secondaries; learners stay.
 * PL_CHANGED with *out, or PL_NOCHANGE while any member is silent or still
 * in a configuration. */
pl_result pl_all_restarted(const pl_view *v, const pl_shard *cur, pl_shard *out);

/* Periodic repair of one shard, at most one change per call:
 *   1. a learner silent for more than PL_UNHEALTHY_MS (or unregistered) is
 *      dropped;
 *   2. else, when primary + secondaries + learners < replicas, one spare
 *      (as for pl_create, preferring a zone no member uses) joins as a
 *      learner.
 * PL_CHANGED with *out, or PL_NOCHANGE.  `why` (may be NULL) gets a short
 * description of the change for the log. */
pl_result pl_repair(const pl_view *v, const pl_shard *cur, pl_shard *out, char *why,
                    size_t whylen);

#endif
