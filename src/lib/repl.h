/*
 * repl.h — primary/backup replication of one shard, as a pure state machine
 * (after PacificA).  No sockets, no clock, no disk: every input arrives as a
 * call with the current time, every output leaves through `repl_io`.  The
 * node (src/node/replica.c) wires it to the network, the log and the
 * manager; tests drive several of them in a fake cluster.
 *
 * Configuration: (shard, version, primary, secondaries, learners), decided
 * only by the manager.  Learners receive the stream but neither count for
 * commit nor grant leases; they join the secondaries (a new version) once
 * caught up.
 *
 * Invariants (DESIGN.md "Replication"; numbered where they are kept):
 *  1. Every message carries the configuration version.  A replica rejects a
 *     message from an older version (REPL_REJECT with its version); a node
 *     that sees a newer version stops acting on the old one.
 *  2. The primary gives each write an LSN, logs it and streams it to every
 *     secondary and learner.  A write is committed when every secondary of
 *     the configuration has acknowledged it as durable and the primary's own
 *     log has it durable:  commit = min(durable, match[s] for s in secs).
 *  3. (node) Replies wait for commit; repl_commit() is the bar.
 *  4. The primary serves only while it holds a lease from every secondary:
 *     an acknowledgement of a message sent at time t grants a lease until
 *     t + lease_ms (primary's clock).  A secondary that has heard nothing
 *     from its primary for grace_ms (> lease_ms) asks the manager to remove
 *     the primary and from then on refuses that primary's messages.  So a
 *     deposed primary's lease has run out before a new primary exists.
 *  5. A secondary whose lease lapsed is reported to the manager for removal;
 *     the primary commits nothing further until a configuration without it
 *     arrives (commit needs its ack).  A new primary is chosen among the
 *     replicas of the last configuration, so it holds every committed write.
 *  6. A replica joining (or rejoining) a primary reports its last (LSN,
 *     version).  If the primary's log has that entry with the same version
 *     and still holds every later entry, streaming resumes after it;
 *     otherwise (a divergent suffix, or a log that no longer reaches back)
 *     the primary sends a full snapshot, which replaces the replica's state.
 *
 * Entries carry the version of the configuration under which the primary
 * created them, so (LSN, version) identifies an entry across failovers.
 */
#ifndef CAIRN_REPL_H
#define CAIRN_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_MAX_MEMBERS 8

typedef struct repl_config {
    uint32_t shard;
    uint64_t version;     /* 0: no configuration */
    uint64_t primary;     /* node id; 0 = none */
    uint64_t secondaries[REPL_MAX_MEMBERS];
    size_t nsec;
    uint64_t learners[REPL_MAX_MEMBERS];
    size_t nlearn;
} repl_config;

enum repl_role { REPL_NONE, REPL_PRIMARY, REPL_SECONDARY, REPL_LEARNER };

#define REPL_MSG_MAP(X)                                                                    \
    X(SYNC)         /* primary -> replica: I am your primary for `version` (carries cfg) */ \
    X(SYNC_REPLY)   /* replica -> primary: my last entry is (lsn, entry_version) */         \
    X(APPEND)       /* primary -> replica: entries first_lsn.., commit; also a beacon */    \
    X(ACK)          /* replica -> primary: durable up to lsn; echoes sent_at */             \
    X(SNAPSHOT)     /* primary -> replica: (transport sends the state at lsn) */            \
    X(REJECT)       /* replica -> primary: your version is stale; mine is `version` */

enum repl_msg_type {
#define REPL_MSG_ENUM(name) REPL_##name,
    REPL_MSG_MAP(REPL_MSG_ENUM)
#undef REPL_MSG_ENUM
};
const char *repl_msg_name(enum repl_msg_type t);

/* One log entry as the state machine sees it: the payload is opaque. */
typedef struct repl_entry {
    uint64_t lsn;
    uint64_t version; /* configuration version that created it */
    const void *payload;
    size_t len;
} repl_entry;

typedef struct repl_msg {
    enum repl_msg_type type;
    uint32_t shard;
    uint64_t version;   /* sender's configuration version (invariant 1) */
    uint64_t from, to;  /* node ids */
    int64_t sent_at;    /* APPEND/SYNC: primary's clock; ACK: echoed */
    uint64_t commit;    /* APPEND: primary's commit index */
    uint64_t lsn;       /* SYNC_REPLY/ACK: replica's last durable lsn; SNAPSHOT: its lsn */
    uint64_t entry_version; /* SYNC_REPLY: version of the entry at lsn */
    const repl_entry *entries; /* APPEND: consecutive, may be 0 (a beacon) */
    size_t nentries;
    const repl_config *cfg;    /* SYNC: the configuration */
} repl_msg;

typedef struct repl_params {
    int64_t lease_ms;     /* default 400 */
    int64_t grace_ms;     /* must be > lease_ms; default 800 */
    int64_t beacon_ms;    /* idle primary sends an empty APPEND this often; default 100 */
    size_t max_batch;     /* entries per APPEND, default 256 */
    size_t max_inflight;  /* unacknowledged APPENDs per replica, default 64 */
} repl_params;

/* Everything the state machine asks of its host.  Calls are synchronous and
 * must not re-enter the repl_* function that made them, except where noted. */
typedef struct repl_io {
    void *data;
    /* Deliver m to m->to (best effort; loss is fine, order per peer kept). */
    void (*send)(void *data, const repl_msg *m);
    /* Read up to `max` entries starting at `from` into out (payloads valid
     * until the next call).  Returns how many (0 if `from` > last), or -1 if
     * the log no longer reaches back to `from`. */
    int (*read_log)(void *data, uint64_t from, size_t max, repl_entry *out);
    /* Version of the entry at lsn, or -1 if unknown (not held). */
    int64_t (*entry_version)(void *data, uint64_t lsn);
    /* Send a full snapshot to `to`; the host calls repl_snapshot_sent() when
     * the replica has loaded it (or _failed). */
    void (*send_snapshot)(void *data, uint64_t to);
    /* Replica side: append (log + apply) these entries.  They are
     * consecutive and entries[0].lsn is the replica's last LSN + 1: the
     * state machine drops duplicates and never asks to truncate, because a
     * replica applies what it logs; a divergent suffix is replaced by a
     * snapshot (invariant 6).  Durability is reported later by
     * repl_local_durable(). */
    void (*append)(void *data, const repl_entry *entries, size_t n);
    /* Ask the manager for a configuration without `victim` (the requester
     * is this node).  The answer arrives as repl_set_config(). */
    void (*request_remove)(void *data, const repl_config *cfg, uint64_t victim);
    /* Ask the manager to move caught-up learner `node` into the secondaries. */
    void (*request_promote_learner)(void *data, const repl_config *cfg, uint64_t node);
    /* Commit index advanced (primary) or the primary's commit arrived. */
    void (*committed)(void *data, uint64_t commit);
    /* Serving state changed (primary's lease held / lost). */
    void (*serving)(void *data, bool serving);
} repl_io;

typedef struct repl repl_t;

repl_t *repl_create(uint64_t self, const repl_params *params, const repl_io *io);
void repl_destroy(repl_t *r);

/* The local log's position at start-up (after recovery). */
void repl_set_log(repl_t *r, uint64_t last_lsn, uint64_t last_version, uint64_t durable_lsn);

/* A configuration from the manager (or carried by SYNC).  Older versions
 * are ignored.  Becoming primary starts SYNC with every replica. */
void repl_set_config(repl_t *r, const repl_config *cfg, int64_t now);

/* Primary: a client write was given `lsn` (the next one) and logged. */
void repl_local_append(repl_t *r, uint64_t lsn, int64_t now);
/* The local log is durable up to lsn (both roles). */
void repl_local_durable(repl_t *r, uint64_t lsn, int64_t now);

void repl_recv(repl_t *r, const repl_msg *m, int64_t now);
/* Periodic: beacons, lease expiry, grace expiry, retries. */
void repl_tick(repl_t *r, int64_t now);

/* Host's snapshot transfer finished: the replica holds the state at lsn. */
void repl_snapshot_sent(repl_t *r, uint64_t to, uint64_t lsn, int64_t now);
void repl_snapshot_failed(repl_t *r, uint64_t to, int64_t now);
/* Replica: a snapshot at (lsn, version) replaced local state. */
void repl_snapshot_loaded(repl_t *r, uint64_t lsn, uint64_t version, int64_t now);

enum repl_role repl_role(const repl_t *r);
const repl_config *repl_config_get(const repl_t *r);
/* Primary: true while every secondary's lease is valid at `now`. */
bool repl_can_serve(const repl_t *r, int64_t now);
uint64_t repl_commit(const repl_t *r);
uint64_t repl_last_lsn(const repl_t *r);
/* Primary: a replica's acknowledged LSN (0 if unknown). */
uint64_t repl_match(const repl_t *r, uint64_t node);

#endif
