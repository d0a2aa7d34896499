/*
 * repl.h — primary/backup replication of one shard, as a pure state machine
 * (after PacificA).  No sockets, no clock, no disk: every input arrives as a
 * call with the current time, every output leaves through `repl_io`.  The
 * node (src/node/replica.c) wires it to the network, the log and the
 * manager; tests drive several of them in a fake cluster
 * (tests/unit/repl_sim.h).
 *
 * Configuration: (shard, version, primary, secondaries, learners), decided
 * only by the manager.  Learners receive the stream but neither count for
 * commit nor grant leases; they join the secondaries (a new version) once
 * caught up.
 *
 * Invariants (DESIGN.md "Replication"; numbered where they are kept):
 *  1. Every message carries the configuration version.  A replica rejects a
 *     message from an older version (REPL_REJECT with its version); a node
 *     that sees a newer version stops acting on the old one (a primary
 *     stops serving) until it has the new configuration.
 *  2. The primary gives each write an LSN, logs it and streams it to every
 *     secondary and learner.  A write is committed when every secondary of
 *     the configuration has acknowledged it as durable and the primary's own
 *     log has it durable:  commit = min(durable, match[s] for s in secs).
 *     The commit index never decreases.
 *  3. (node) Replies wait for commit; repl_commit() is the bar.
 *  4. The primary serves only while it holds a lease from every secondary:
 *     an acknowledgement of a message sent at time t grants a lease until
 *     t + lease_ms (primary's clock).  Leases count only for messages sent
 *     under the current version, so a primary (new, or continuing into a
 *     new version) serves only once every secondary has answered it under
 *     that version.  A secondary that has heard nothing from its primary
 *     for grace_ms (> lease_ms) asks the manager to remove the primary and
 *     from then on refuses that primary's messages at that version.  So a
 *     deposed primary's lease has run out before a new primary exists.
 *     And from the granting side: a node serves as primary only once every
 *     lease it granted (answering another primary, lease_ms from its
 *     answer on its own clock, or, after a start, lease_ms from its first
 *     configuration) has run out — which keeps two primaries apart
 *     whatever the manager decides and however late it decides it.  (A
 *     lease for a message sent no later than a fenced one from the same
 *     primary at the same version does not count: that primary gave it
 *     up; see "Handing over" below.)  All
 *     members use the same lease_ms; clocks may be offset but must tick at
 *     nearly the same rate (grace_ms - lease_ms is the margin).
 *  5. A secondary whose lease lapsed is reported to the manager for removal;
 *     the primary commits nothing further until a configuration without it
 *     arrives (commit needs its ack).  A new primary is chosen among the
 *     secondaries of the last configuration, so it holds every committed
 *     write.  A learner joins the secondaries only at the primary's request,
 *     made when the learner's acknowledged LSN has reached the commit index
 *     and the primary's whole log as it was when it took over (its
 *     predecessors may have committed all of it);
 *     from that request on the learner counts for commit, and for the
 *     primary's leases (4), like a secondary: it holds every committed
 *     write by the time it is one, and its grace timer, which starts when
 *     it learns it is one, cannot outrun a primary still at the version
 *     before.  (So the manager turns a learner into a secondary only at
 *     the primary's request.)
 *  6. A replica joining (or rejoining) a primary reports its last (LSN,
 *     version).  If the primary's log has that entry with the same version
 *     and still holds every later entry, streaming resumes after it;
 *     otherwise (a divergent suffix, or a log that no longer reaches back)
 *     the primary sends a full snapshot, which replaces the replica's state.
 *
 * Handing over (a planned switchover, driven by the manager):
 * repl_drain_start() fences the primary at once: it serves nothing (reads
 * included), so the host admits no write, and it gives up every lease it
 * holds — after the fence it counts only answers to messages it sends once
 * it resumes.  It keeps replicating; every SYNC and APPEND it sends while
 * fenced carries REPL_F_FENCED.  When its commit index reaches its last LSN
 * it is drained (repl_drain_state()): every secondary holds its whole log,
 * and the manager may write a configuration with one of them as primary.
 * A replica that receives a fenced message forgets the leases it granted
 * for messages sent up to it (the primary will never use them), so the new
 * primary need not wait them out (the granting side of invariant 4).  If no
 * newer configuration comes, the primary resumes by itself at the drain's
 * deadline (or at repl_drain_stop()) and serves again once every secondary
 * has answered a message sent after that: a manager that dies mid-way
 * leaves no primary fenced for good.
 *
 * Entries carry the version of the configuration under which the primary
 * created them, so (LSN, version) identifies an entry across failovers —
 * provided no node is primary twice of one version.  Likewise a secondary
 * must not take back, after a restart, the refusal of invariant 4.  So a
 * restarted node acts at no version it may have acted at before: the host
 * gives repl_set_floor() the last version it had, and the manager gives a
 * member that re-registers after a restart a new version (a restarted
 * primary with live secondaries hands its role to one of them).  Without a
 * floor, repl still refuses to act as primary of a version whose entries it
 * finds in its own log.
 *
 * Wire protocol (fields of repl_msg that each type uses; all carry
 * shard, version, from, to):
 *
 *   | type       | direction         | fields                                        |
 *   |------------|-------------------|-----------------------------------------------|
 *   | SYNC       | primary -> replica| cfg, sent_at                                  |
 *   | SYNC_REPLY | replica -> primary| lsn, entry_version = its last entry;          |
 *   |            |                   | sent_at = echo of the SYNC or APPEND answered |
 *   | APPEND     | primary -> replica| lsn, entry_version = the entry before         |
 *   |            |                   | entries[0] (the position the message extends, |
 *   |            |                   | or a beacon vouches for; (0, 0) = "none");    |
 *   |            |                   | entries (may be none: a beacon); commit;      |
 *   |            |                   | sent_at                                       |
 *   | ACK        | replica -> primary| lsn = durable and checked against this       |
 *   |            |                   | primary's log; sent_at = echo of the newest   |
 *   |            |                   | APPEND it covers                              |
 *   | PROGRESS   | replica -> primary| lsn = its last entry; commit = bytes of the   |
 *   |            |                   | message received so far; sent_at = its clock; |
 *   |            |                   | grants no lease (see "Large entries")         |
 *   | REJECT     | replica -> primary| version = the replica's (newer or equal)      |
 *   | (any)      |                   | flags: REPL_F_FENCED on a fenced primary's    |
 *   |            |                   | SYNC and APPEND (handing over, above)         |
 *   | SNAPSHOT   | (host transport)  | not produced or consumed by repl; free for    |
 *   |            |                   | the host's snapshot transfer header           |
 *
 * Large entries.  An APPEND carrying tens of megabytes takes longer than a
 * lease to travel and be applied, and beacons queue behind it on the same
 * stream: neither side hears a complete message meanwhile, though both are
 * alive and busy.  Leases are not stretched for it (the primary may stop
 * serving for a while: TRYAGAIN), but the removal requests wait while there
 * is evidence of progress:
 *  - the replica's host reports bytes of a message from its primary still
 *    arriving (repl_stream_progress()); that counts as hearing from the
 *    primary for the grace timer, and the replica tells the primary so with
 *    a PROGRESS message every beacon_ms / 2 at most;
 *  - the primary does not ask for a replica's removal while it heard a
 *    PROGRESS from it within lease_ms plus the time to apply the bytes that
 *    PROGRESS reported (at a conservative REPL_SLOW_BYTES_PER_MS: a replica
 *    applies a message in one go, silent meanwhile), and what it sent it
 *    could still be arriving and being applied at that rate; nor does it
 *    send an APPEND again (below) in that time.  A replica that stops
 *    making progress is reported at most lease_ms + bytes / that rate
 *    after its last PROGRESS.
 * APPENDs carry at most REPL_BATCH_BYTES of payload (at least one entry),
 * so beacons go between large entries.
 *
 * A replica that cannot take an APPEND (a gap after a lost message, or its
 * entry at `lsn` has another version) answers with an unsolicited
 * SYNC_REPLY — its real position — and the primary decides again between
 * streaming from there and a snapshot (invariant 6).  An APPEND not
 * acknowledged within lease_ms / 2 is sent again from the replica's last
 * acknowledged position.
 */
#ifndef CAIRN_REPL_H
#define CAIRN_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPL_MAX_MEMBERS 8
/* Payload bytes per APPEND beyond its first entry. */
#define REPL_BATCH_BYTES ((size_t)1 << 20)
/* The slowest stream the primary waits for while a replica reports
 * progress (20 MB/s), in bytes per millisecond. */
#define REPL_SLOW_BYTES_PER_MS 20000

typedef struct repl_config {
    uint32_t shard;
    uint64_t version;     /* 0: no configuration */
    uint64_t primary;     /* node id; 0 = none */
    uint64_t secondaries[REPL_MAX_MEMBERS];
    size_t nsec;
    uint64_t learners[REPL_MAX_MEMBERS];
    size_t nlearn;
} repl_config;

#define REPL_ROLE_MAP(X)                                                                   \
    X(NONE, "none")           /* not in the configuration (or none yet) */                 \
    X(PRIMARY, "primary")                                                                   \
    X(SECONDARY, "secondary")                                                               \
    X(LEARNER, "learner")

enum repl_role {
#define REPL_ROLE_ENUM(name, text) REPL_##name,
    REPL_ROLE_MAP(REPL_ROLE_ENUM)
#undef REPL_ROLE_ENUM
};
/* "none", "primary", "secondary", "learner"; a static string. */
const char *repl_role_name(enum repl_role r);

#define REPL_MSG_MAP(X)                                                                    \
    X(SYNC)         /* primary -> replica: I am your primary for `version` (carries cfg) */ \
    X(SYNC_REPLY)   /* replica -> primary: my last entry is (lsn, entry_version) */         \
    X(APPEND)       /* primary -> replica: entries after (lsn, entry_version); a beacon */  \
    X(ACK)          /* replica -> primary: durable up to lsn; echoes sent_at */             \
    X(PROGRESS)     /* replica -> primary: your stream is arriving (no lease) */            \
    X(SNAPSHOT)     /* not used by repl: the host's snapshot transfer may use it */         \
    X(REJECT)       /* replica -> primary: your version is stale; mine is `version` */

enum repl_msg_type {
#define REPL_MSG_ENUM(name) REPL_##name,
    REPL_MSG_MAP(REPL_MSG_ENUM)
#undef REPL_MSG_ENUM
};
/* "SYNC", "APPEND", ...; a static string ("?" for an unknown value). */
const char *repl_msg_name(enum repl_msg_type t);

/* One log entry as the state machine sees it: the payload is opaque. */
typedef struct repl_entry {
    uint64_t lsn;
    uint64_t version; /* configuration version that created it */
    const void *payload;
    size_t len;
} repl_entry;

/* repl_msg.flags */
#define REPL_F_FENCED 1u /* from a primary handing over: an answer grants no lease */

/* A message.  Everything it points to belongs to the caller and is valid
 * only during the call that passes it (send or repl_recv): copy what you
 * keep. */
typedef struct repl_msg {
    enum repl_msg_type type;
    uint32_t flags;     /* REPL_F_* */
    uint32_t shard;
    uint64_t version;   /* sender's configuration version (invariant 1) */
    uint64_t from, to;  /* node ids */
    int64_t sent_at;    /* SYNC/APPEND: primary's clock; SYNC_REPLY/ACK: echoed;
                         * REJECT: sender's clock, unused */
    uint64_t commit;    /* APPEND: primary's commit index */
    uint64_t lsn;       /* see the table above */
    uint64_t entry_version; /* version of the entry at lsn (0 for lsn 0) */
    const repl_entry *entries; /* APPEND: consecutive from lsn + 1, may be 0 (a beacon) */
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

/* Fill p with the defaults above. */
void repl_params_init(repl_params *p);

/* Everything the state machine asks of its host.  Calls are synchronous and
 * must not re-enter repl (queue the work for later), with one exception:
 * send_snapshot may call repl_snapshot_failed() when it cannot start. */
typedef struct repl_io {
    void *data;
    /* Deliver m to m->to (best effort; loss is fine, order per peer kept). */
    void (*send)(void *data, const repl_msg *m);
    /* Read up to `max` entries starting at `from` into out (payloads valid
     * until the next call).  Returns how many (0 if `from` > last), or -1 if
     * the log no longer reaches back to `from`. */
    int (*read_log)(void *data, uint64_t from, size_t max, repl_entry *out);
    /* Version of the entry at lsn (lsn >= 1), or -1 if unknown (not held).
     * After a snapshot at S, the entry at S counts as held (its version is
     * the snapshot's). */
    int64_t (*entry_version)(void *data, uint64_t lsn);
    /* Primary: send a full snapshot to `to`, tagged (self, current version,
     * its lsn, that entry's version).  Its LSN must be at least
     * repl_last_lsn() at this call (take it now, of the current state).
     * The host later calls repl_snapshot_sent() once the replica has loaded
     * and persisted it, or repl_snapshot_failed(). */
    void (*send_snapshot)(void *data, uint64_t to);
    /* Replica side: append (log + apply) these entries.  They are
     * consecutive and entries[0].lsn is the replica's last LSN + 1: the
     * state machine drops duplicates and never asks to truncate, because a
     * replica applies what it logs; a divergent suffix is replaced by a
     * snapshot (invariant 6).  Durability is reported later by
     * repl_local_durable(). */
    void (*append)(void *data, const repl_entry *entries, size_t n);
    /* Ask the manager for a configuration without `victim` (the requester
     * is this node), by compare-and-swap on cfg->version.  The answer
     * arrives as repl_set_config().  Asked again (same arguments) while
     * the reason lasts: a lost request is retried, a stale one fails. */
    void (*request_remove)(void *data, const repl_config *cfg, uint64_t victim);
    /* Ask the manager to move caught-up learner `node` into the
     * secondaries (compare-and-swap on cfg->version; retried likewise). */
    void (*request_promote_learner)(void *data, const repl_config *cfg, uint64_t node);
    /* Commit index advanced (primary) or the primary's commit arrived. */
    void (*committed)(void *data, uint64_t commit);
    /* Serving state changed (primary's lease held / lost).  Advisory: a
     * lease can also run out between two calls, so the host asks
     * repl_can_serve(now) before each reply it sends. */
    void (*serving)(void *data, bool serving);
} repl_io;

typedef struct repl repl_t;

/* params NULL: defaults.  Preconditions: self != 0, grace_ms > lease_ms > 0,
 * beacon_ms > 0, max_batch >= 1, max_inflight >= 1, every io callback set.
 * Allocates everything it will use; repl_destroy() frees it. */
repl_t *repl_create(uint64_t self, const repl_params *params, const repl_io *io);
void repl_destroy(repl_t *r);

/* The local log's position at start-up (after recovery): last entry
 * (last_lsn, last_version), durable up to durable_lsn.  Call once, before
 * anything else. */
void repl_set_log(repl_t *r, uint64_t last_lsn, uint64_t last_version, uint64_t durable_lsn);

/* After a restart: the newest configuration version this node had adopted
 * before it (the host keeps it on disk, written whenever
 * repl_config_get()->version changes).  This node will act at no version
 * up to it: a secondary that had asked for its primary's removal must not
 * grant that primary leases again (4), a primary must not give out LSNs of
 * that version again (6).  It answers such versions with REJECT and waits
 * for a newer configuration.  Optional (0, the default, is no floor; then
 * only the log's last version protects the primary case); call before any
 * configuration. */
void repl_set_floor(repl_t *r, uint64_t version);

/* A configuration from the manager (or carried by SYNC).  Older or equal
 * versions, versions up to the floor and malformed ones (a node twice, too
 * many members, ...) are ignored.  Every new version restarts the leases;
 * becoming (or staying) primary starts SYNC with every replica.  The
 * first configuration after repl_create() also starts a lease_ms wait
 * before this node may serve (leases it may have granted before a
 * restart). */
void repl_set_config(repl_t *r, const repl_config *cfg, int64_t now);

/* Primary: a client write was given `lsn` (= repl_last_lsn() + 1) and
 * logged with version repl_config_get()->version.  Call it only when
 * repl_can_serve(now).  Reads and writes are answered once repl_commit()
 * reaches the LSN they observed — for a read, repl_last_lsn() at the time
 * (a new primary's log may end in entries not yet committed). */
void repl_local_append(repl_t *r, uint64_t lsn, int64_t now);
/* Primary: every entry up to lsn (consecutive after the last one) was
 * logged; stream them together.  Hosts call this once per loop turn so
 * that a pipeline's writes travel in few messages. */
void repl_local_append_upto(repl_t *r, uint64_t lsn, int64_t now);
/* The local log is durable up to lsn (<= repl_last_lsn()), both roles.  A
 * replica acknowledges only what this has covered. */
void repl_local_durable(repl_t *r, uint64_t lsn, int64_t now);

/* A message for this node.  Malformed or foreign ones are ignored. */
void repl_recv(repl_t *r, const repl_msg *m, int64_t now);
/* Replica: `bytes` of a message (not yet complete) from `from` at `version`
 * have arrived on a stream that has delivered that node's messages at that
 * version before.  If that is the current primary at the current version,
 * it counts as hearing from it for the grace timer (only delays asking for
 * its removal; grants no lease), and a PROGRESS tells the primary (at most
 * every beacon_ms / 2).  Ignored otherwise. */
void repl_stream_progress(repl_t *r, uint64_t from, uint64_t version, uint64_t bytes,
                          int64_t now);
/* Periodic (every few ms, at most beacon_ms / 2 apart): beacons, lease
 * expiry, grace expiry, retries. */
void repl_tick(repl_t *r, int64_t now);

/* Primary: the host's snapshot transfer finished: replica `to` has loaded
 * and persisted the state at lsn. */
void repl_snapshot_sent(repl_t *r, uint64_t to, uint64_t lsn, int64_t now);
void repl_snapshot_failed(repl_t *r, uint64_t to, int64_t now);
/* Replica: may a snapshot at lsn, sent by `from` under configuration
 * `version`, replace the local state?  True only for the current primary
 * at the current version, and only if lsn does not fall below what this
 * replica has acknowledged or seen committed.  Ask right before swapping
 * the state in, and call repl_snapshot_loaded() in the same turn. */
bool repl_snapshot_wanted(const repl_t *r, uint64_t from, uint64_t version, uint64_t lsn);
/* Replica: a snapshot at (lsn, version of that entry) replaced the local
 * state, durably (the log now ends at lsn).  It counts as acknowledged:
 * no later snapshot below lsn is wanted at this version. */
void repl_snapshot_loaded(repl_t *r, uint64_t lsn, uint64_t version, int64_t now);

/* ---- handing over (see the top of this file) ---- */

#define REPL_DRAIN_MAP(X)                                                                  \
    X(NONE, "none")         /* not handing over */                                         \
    X(DRAINING, "draining") /* fenced, entries not yet all committed */                   \
    X(DRAINED, "drained")   /* fenced, commit index = last LSN */

enum repl_drain {
#define REPL_DRAIN_ENUM(name, text) REPL_DRAIN_##name,
    REPL_DRAIN_MAP(REPL_DRAIN_ENUM)
#undef REPL_DRAIN_ENUM
};
/* "none", "draining", "drained"; a static string. */
const char *repl_drain_name(enum repl_drain d);

/* Primary of `version`: fence now and hand over until `until` (this
 * node's clock), when it resumes by itself.  Called again while fenced, it
 * only moves the deadline.  False (nothing done) unless this node is the
 * primary of `version` and has not seen a newer one.  The host must log no
 * write while fenced (repl_can_serve() is false throughout). */
bool repl_drain_start(repl_t *r, uint64_t version, int64_t until, int64_t now);
/* End a drain early (the manager gave up): serve again on fresh leases.
 * No-op when not fenced. */
void repl_drain_stop(repl_t *r, int64_t now);
/* REPL_DRAIN_DRAINED once the commit index has reached the last LSN: that
 * LSN (repl_last_lsn()) is final and durable on every secondary. */
enum repl_drain repl_drain_state(const repl_t *r);
/* The drain's deadline (meaningful while not REPL_DRAIN_NONE). */
int64_t repl_drain_until(const repl_t *r);

enum repl_role repl_role(const repl_t *r);
/* Valid until the next repl_* call that takes a message or configuration. */
const repl_config *repl_config_get(const repl_t *r);
/* Primary: true while the lease of every secondary (and of every learner
 * whose promotion it asked for) is valid at `now`, no newer version has
 * been seen and it is not handing over. */
bool repl_can_serve(const repl_t *r, int64_t now);
/* Primary: the commit index.  Replica: the primary's, as far as the local
 * log is known to agree with it (never beyond repl_last_lsn()). */
uint64_t repl_commit(const repl_t *r);
uint64_t repl_last_lsn(const repl_t *r);
/* Primary: a replica's acknowledged LSN under the current version (0 if
 * unknown). */
uint64_t repl_match(const repl_t *r, uint64_t node);

#endif
