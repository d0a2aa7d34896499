/*
 * repl.c — the replication state machine of repl.h (PacificA-style
 * primary/backup).  Invariants are numbered as in repl.h and DESIGN.md and
 * asserted where they are kept.
 *
 * Role, from the configuration (adopt()):
 *
 *   NONE --repl_set_config / a SYNC naming us--> PRIMARY | SECONDARY | LEARNER
 *   any  --a newer configuration---------------> adopt() again
 *   any  --a newer version without its configuration (REJECT, APPEND)-->
 *        stale: serves nothing, acts on nothing until the next adopt()
 *
 * Primary, per replica ("peer"); adopt() puts every peer in SYNCING:
 *
 *                 SYNC_REPLY: the logs agree at its last entry (decide)
 *      SYNCING -----------------------------------------------> STREAMING
 *       |  ^  SYNC again every beacon_ms                          |  ^  |
 *       |  |                                                      |  +--+ a position report
 *       |  | snapshot_failed                                      |       that agrees, or
 *       |  |                                                      |       lease_ms / 2 with
 *       |  |     SYNC_REPLY: they differ, or read_log() = -1      |       no ACK: rewind
 *       |  +--- SNAPSHOT <-------------------------------------- -+
 *       +-------> |  ^      a position report that differs,
 *   (as above)    |  |      or read_log() = -1 (start_snapshot)
 *                 |  +-- (0, 0) beacons keep the lease meanwhile
 *                 +----- snapshot_sent(lsn) --> STREAMING from lsn + 1
 *
 *   decide()        invariant 6: stream after the replica's last entry, or
 *                   a snapshot
 *   pump()          APPEND batches of max_batch (and REPL_BATCH_BYTES),
 *                   max_inflight in flight
 *   on_ack()        lease (4), match and commit (2, 5), learner promotion (5)
 *   on_progress()   a replica's PROGRESS: alive, reading a large APPEND
 *   primary_tick()  beacons, retransmission (not while a large APPEND may
 *                   still be arriving), lease lapse -> request_remove (5)
 *                   unless progressing(), the end of a drain at its deadline
 *   repl_can_serve  every lease held (4), none granted by us still running,
 *                   not fenced
 *
 * Handing over (repl.h), on the primary:
 *
 *   serving --repl_drain_start: fence (leases given up, FENCED beacons)--> DRAINING
 *   DRAINING --commit reaches the last LSN (on_ack, durable)-------------> DRAINED
 *   DRAINING | DRAINED --deadline (primary_tick) or repl_drain_stop------> serving
 *                        again once every secondary answers a message
 *                        sent after unfence() (lease_from)
 *   any --a newer configuration (adopt)--> as that configuration says
 *
 * Replica (secondary or learner):
 *
 *   on_sync()       adopt the configuration it carries; SYNC_REPLY (last entry)
 *   on_append()     check the entry the APPEND extends, drop duplicates,
 *                   io->append the rest; queue the ack until the entries are
 *                   durable (ack_flush); a gap or a mismatch is answered by
 *                   a SYNC_REPLY with the real position
 *   replica_tick()  grace: request_remove(primary), then refuse it (4)
 *   repl_stream_progress()  the host sees a large message from the primary
 *                   arriving: counts as heard for the grace timer (4 keeps:
 *                   it only delays the request), PROGRESS to the primary
 *   note_fence()    a fenced message voids the leases granted for messages
 *                   sent up to it (granted_cur, fence_hi)
 *
 * Large entries (repl.h): liveness decisions, never leases, take the size
 * of what is in transit into account.  A primary whose leases lapse while
 * a replica reads a 40 MB APPEND stops serving (repl_can_serve: 4 as
 * before) but does not ask for that replica's removal while it reports
 * PROGRESS and the bytes could still be in transit at
 * REPL_SLOW_BYTES_PER_MS; the replica's grace timer counts those bytes as
 * hearing from the primary.  Both only postpone a request to the manager,
 * and commit still waits for every secondary's ACK (5).
 *
 * An ACK's lsn is never more than what the replica has durable *and* has
 * checked against this primary's log (the end of an APPEND it accepted, or
 * a snapshot of it), so match[] may be trusted for commit without knowing
 * what the replica held before.
 */
#include "lib/repl.h"

#include <assert.h>
#include <string.h>

#include "lib/mem.h"

#define MAX_PEERS (2 * REPL_MAX_MEMBERS)
#define ACKQ_SLACK 8 /* ack queue slots beyond max_inflight (beacons, SYNCs) */

static const char *const msg_names[] = {
#define REPL_MSG_NAME(name) #name,
    REPL_MSG_MAP(REPL_MSG_NAME)
#undef REPL_MSG_NAME
};

static const char *const role_names[] = {
#define REPL_ROLE_NAME(name, text) text,
    REPL_ROLE_MAP(REPL_ROLE_NAME)
#undef REPL_ROLE_NAME
};

static const char *const drain_names[] = {
#define REPL_DRAIN_NAME(name, text) text,
    REPL_DRAIN_MAP(REPL_DRAIN_NAME)
#undef REPL_DRAIN_NAME
};

const char *repl_msg_name(enum repl_msg_type t)
{
    return (unsigned)t < sizeof(msg_names) / sizeof(msg_names[0]) ? msg_names[t] : "?";
}

const char *repl_role_name(enum repl_role r)
{
    return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "?";
}

const char *repl_drain_name(enum repl_drain d)
{
    return (unsigned)d < sizeof(drain_names) / sizeof(drain_names[0]) ? drain_names[d] : "?";
}

void repl_params_init(repl_params *p)
{
    p->lease_ms = 400;
    p->grace_ms = 800;
    p->beacon_ms = 100;
    p->max_batch = 256;
    p->max_inflight = 64;
}

enum peer_state { PEER_SYNCING, PEER_STREAMING, PEER_SNAPSHOT };

/* An APPEND with entries, not yet acknowledged: flow control and timeout. */
typedef struct flight {
    uint64_t end; /* its last LSN */
    int64_t at;   /* its sent_at */
    int64_t due;  /* primary: counts as lost from then on (large ones later) */
} flight;

/* The primary's view of one replica, for the current version only. */
typedef struct peer {
    uint64_t id;
    bool secondary; /* false: learner */
    enum peer_state state;
    uint64_t next;        /* STREAMING: next LSN to send */
    uint64_t base;        /* a position known to agree with our log (rewinds) */
    uint64_t match;       /* acknowledged: durable there and checked (invariant 2) */
    int64_t lease_until;  /* invariant 4; 0 = none under this version */
    int64_t last_sent;    /* beacons */
    int64_t report_floor; /* position reports echoing older messages are stale */
    bool remove_asked;
    int64_t remove_asked_at;
    bool promote_pending; /* learner: promotion asked; counts for commit (5) */
    int64_t promote_asked_at;
    int64_t progress_at;  /* last PROGRESS from it under this version */
    uint64_t progress_bytes; /* ... and the bytes it had of that message */
    int64_t drained_by;   /* what we sent it has arrived by then at the
                           * slowest rate we wait for (REPL_SLOW_BYTES_PER_MS) */
    flight *ring; /* max_inflight slots */
    size_t rhead, rlen;
} peer;

struct repl {
    uint64_t self;
    repl_params par;
    repl_io io;
    repl_config cfg;
    enum repl_role role;
    bool stale;         /* a newer version exists: act on nothing (invariant 1) */
    uint64_t floor;     /* acted at up to this version before a restart */
    bool started;       /* has seen a `now` (adopt) */
    int64_t granted_until; /* leases we granted others run out by then (4) */
    int64_t granted_cur;   /* ... and those granted to the current primary at
                            * the current version (folded into granted_until
                            * by adopt()) */
    int64_t granted_echo;  /* the newest sent_at granted_cur answers */
    int64_t fence_hi;      /* newest sent_at of a fenced message from the
                            * current primary (INT64_MIN: none) */
    int64_t adopted_at; /* when cfg arrived; leases count only from here (4) */
    uint64_t adopted_last; /* primary: our last LSN then; earlier primaries
                            * may have committed up to it (5) */
    uint64_t last_lsn, last_version, durable, commit;
    bool serving; /* as last reported through io.serving */

    /* primary */
    peer peers[MAX_PEERS];
    size_t npeers;
    bool fenced;        /* handing over: serve nothing, lease given up */
    int64_t fence_until; /* ... until then at the latest */
    int64_t lease_from; /* leases count only from answers to messages sent
                         * at or after this (after a fence) */
    flight *rings;      /* MAX_PEERS * max_inflight */
    repl_entry *rdbuf;  /* max_batch, for read_log */

    /* replica */
    int64_t heard_at;   /* last message accepted from the primary */
    bool refusing;      /* asked for the primary's removal at this version (4) */
    int64_t remove_asked_at;
    int64_t progress_sent_at; /* last PROGRESS to the primary */
    uint64_t acked_upto; /* highest lsn acknowledged at this version */
    flight *ackq;        /* (end, sent_at) of accepted messages awaiting durability */
    size_t qhead, qlen, qcap;
};

/* ---- small helpers ---- */

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static bool listed(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

static enum repl_role role_in(const repl_config *c, uint64_t id)
{
    if (c->version == 0 || id == 0) return REPL_NONE;
    if (c->primary == id) return REPL_PRIMARY;
    if (listed(c->secondaries, c->nsec, id)) return REPL_SECONDARY;
    if (listed(c->learners, c->nlearn, id)) return REPL_LEARNER;
    return REPL_NONE;
}

/* A configuration from the network: sizes within bounds, no node twice. */
static bool cfg_valid(const repl_config *c)
{
    if (c->version == 0 || c->nsec > REPL_MAX_MEMBERS || c->nlearn > REPL_MAX_MEMBERS) return false;
    uint64_t ids[1 + 2 * REPL_MAX_MEMBERS];
    size_t n = 0;
    if (c->primary) ids[n++] = c->primary;
    for (size_t i = 0; i < c->nsec; i++) ids[n++] = c->secondaries[i];
    for (size_t i = 0; i < c->nlearn; i++) ids[n++] = c->learners[i];
    for (size_t i = 0; i < n; i++) {
        if (ids[i] == 0) return false;
        for (size_t j = i + 1; j < n; j++)
            if (ids[i] == ids[j]) return false;
    }
    return true;
}

static bool is_replica(const repl_t *r)
{
    return r->role == REPL_SECONDARY || r->role == REPL_LEARNER;
}

/* A message of this version comes from a configuration we have left, or
 * (at or below the floor) may have acted in before a restart. */
static bool too_old(const repl_t *r, uint64_t version)
{
    return version < r->cfg.version || version <= r->floor;
}

/* Version of our entry at lsn: 0 for the empty prefix, -1 if not held. */
static int64_t version_at(const repl_t *r, uint64_t lsn)
{
    if (lsn == 0) return 0;
    if (lsn > r->last_lsn) return -1;
    if (lsn == r->last_lsn) return (int64_t)r->last_version;
    return r->io.entry_version(r->io.data, lsn);
}

static repl_msg msg_new(const repl_t *r, enum repl_msg_type t, uint64_t to, int64_t sent_at)
{
    repl_msg m;
    memset(&m, 0, sizeof(m));
    m.type = t;
    m.shard = r->cfg.shard;
    m.version = r->cfg.version;
    m.from = r->self;
    m.to = to;
    m.sent_at = sent_at;
    if (r->fenced && (t == REPL_SYNC || t == REPL_APPEND)) m.flags = REPL_F_FENCED;
    return m;
}

static void serving_update(repl_t *r, int64_t now)
{
    bool s = repl_can_serve(r, now);
    if (s == r->serving) return;
    r->serving = s;
    r->io.serving(r->io.data, s);
}

/* ---- create / destroy ---- */

repl_t *repl_create(uint64_t self, const repl_params *params, const repl_io *io)
{
    repl_params def;
    repl_params_init(&def);
    const repl_params *p = params ? params : &def;
    assert(self != 0);
    assert(p->lease_ms > 0 && p->grace_ms > p->lease_ms && p->beacon_ms > 0);
    assert(p->max_batch >= 1 && p->max_batch <= (size_t)1 << 20 && p->max_inflight >= 1 &&
           p->max_inflight <= (size_t)1 << 16);
    assert(io && io->send && io->read_log && io->entry_version && io->send_snapshot && io->append &&
           io->request_remove && io->request_promote_learner && io->committed && io->serving);

    repl_t *r = cairn_calloc(1, sizeof(*r));
    r->self = self;
    r->par = *p;
    r->io = *io;
    r->rings = cairn_calloc(MAX_PEERS * p->max_inflight, sizeof(*r->rings));
    r->rdbuf = cairn_calloc(p->max_batch, sizeof(*r->rdbuf));
    r->qcap = p->max_inflight + ACKQ_SLACK;
    r->ackq = cairn_calloc(r->qcap, sizeof(*r->ackq));
    for (size_t i = 0; i < MAX_PEERS; i++) r->peers[i].ring = r->rings + i * p->max_inflight;
    return r;
}

void repl_destroy(repl_t *r)
{
    if (!r) return;
    cairn_free(r->ackq);
    cairn_free(r->rdbuf);
    cairn_free(r->rings);
    cairn_free(r);
}

void repl_set_log(repl_t *r, uint64_t last_lsn, uint64_t last_version, uint64_t durable_lsn)
{
    assert(r->cfg.version == 0 && "repl_set_log() comes before any configuration");
    assert(durable_lsn <= last_lsn && (last_lsn != 0 || last_version == 0));
    r->last_lsn = last_lsn;
    r->last_version = last_version;
    r->durable = durable_lsn;
}

void repl_set_floor(repl_t *r, uint64_t version)
{
    assert(r->cfg.version == 0 && "repl_set_floor() comes before any configuration");
    r->floor = version;
}

/* ================================================================
 * Primary
 * ================================================================ */

static peer *peer_find(repl_t *r, uint64_t id)
{
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i].id == id) return &r->peers[i];
    return NULL;
}

static void ring_push(repl_t *r, peer *p, uint64_t end, int64_t at, int64_t due)
{
    assert(p->rlen < r->par.max_inflight);
    p->ring[(p->rhead + p->rlen) % r->par.max_inflight] = (flight){end, at, due};
    p->rlen++;
}

static void ring_ack(repl_t *r, peer *p, uint64_t lsn)
{
    while (p->rlen && p->ring[p->rhead].end <= lsn) {
        p->rhead = (p->rhead + 1) % r->par.max_inflight;
        p->rlen--;
    }
}

static void send_sync(repl_t *r, peer *p, int64_t now)
{
    repl_msg m = msg_new(r, REPL_SYNC, p->id, now);
    m.cfg = &r->cfg;
    m.commit = r->commit;
    p->last_sent = now;
    r->io.send(r->io.data, &m);
}

static void start_snapshot(repl_t *r, peer *p, int64_t now)
{
    p->state = PEER_SNAPSHOT;
    p->rlen = 0;
    p->last_sent = now; /* the next (0, 0) beacon is due a beacon period from now */
    r->io.send_snapshot(r->io.data, p->id);
    /* send_snapshot may have called repl_snapshot_failed(): p may be SYNCING again. */
}

/* Send one APPEND at p->next: a batch if `entries` and there is one, else a
 * beacon vouching for p->next - 1.  False if it started a snapshot instead
 * (the log no longer holds what this replica needs). */
static bool send_append(repl_t *r, peer *p, int64_t now, bool entries)
{
    assert(p->state == PEER_STREAMING && p->next >= 1 && p->next <= r->last_lsn + 1);
    uint64_t prev = p->next - 1;
    int64_t pv = version_at(r, prev);
    if (pv < 0) {
        start_snapshot(r, p, now);
        return false;
    }
    size_t n = 0, bytes = 0;
    if (entries && p->next <= r->last_lsn) {
        size_t want = (size_t)min_u64(r->par.max_batch, r->last_lsn - p->next + 1);
        int got = r->io.read_log(r->io.data, p->next, want, r->rdbuf);
        if (got <= 0) { /* -1: the log no longer reaches back (invariant 6) */
            start_snapshot(r, p, now);
            return false;
        }
        n = (size_t)got;
        assert(n <= want);
        for (size_t i = 0; i < n; i++) assert(r->rdbuf[i].lsn == p->next + i);
        /* Large entries travel alone, so that beacons go between them. */
        size_t k = 1;
        bytes = r->rdbuf[0].len;
        while (k < n && bytes + r->rdbuf[k].len <= REPL_BATCH_BYTES) bytes += r->rdbuf[k++].len;
        n = k;
    }
    repl_msg m = msg_new(r, REPL_APPEND, p->id, now);
    m.lsn = prev;
    m.entry_version = (uint64_t)pv;
    m.commit = r->commit;
    m.entries = n ? r->rdbuf : NULL;
    m.nentries = n;
    p->last_sent = now;
    r->io.send(r->io.data, &m);
    /* The stream to it as a queue drained at the slowest rate we wait for,
     * twice (it arrives, then is applied in one go): this message has been
     * taken by drained_by at the latest if the replica is alive and
     * progressing, and counts as lost only some time after that. */
    int64_t travel = (int64_t)(2 * bytes / REPL_SLOW_BYTES_PER_MS);
    p->drained_by = (p->drained_by > now ? p->drained_by : now) + travel;
    if (n) {
        ring_push(r, p, p->next + n - 1, now, p->drained_by + r->par.lease_ms / 2);
        p->next += n;
    }
    return true;
}

/* Invariant 2: stream what the replica lacks, within the flight window. */
static void pump(repl_t *r, peer *p, int64_t now)
{
    while (!r->stale && p->state == PEER_STREAMING && p->next <= r->last_lsn &&
           p->rlen < r->par.max_inflight)
        if (!send_append(r, p, now, true)) return;
}

static void beacon(repl_t *r, peer *p, int64_t now)
{
    switch (p->state) {
    case PEER_SYNCING:
        send_sync(r, p, now);
        break;
    case PEER_STREAMING:
        send_append(r, p, now, false);
        break;
    case PEER_SNAPSHOT: {
        /* (0, 0) agrees with every log: it keeps the lease and the
         * replica's grace timer alive without claiming a position. */
        repl_msg m = msg_new(r, REPL_APPEND, p->id, now);
        m.commit = r->commit;
        p->last_sent = now;
        r->io.send(r->io.data, &m);
        break;
    }
    }
}

/* Invariant 6: the replica's log ends at (lsn, ver).  If ours holds that
 * entry with that version, the two logs agree up to it (one primary per
 * version, and every APPEND checks the entry it extends), so streaming
 * resumes after it; otherwise only a snapshot can repair it. */
static void decide(repl_t *r, peer *p, uint64_t lsn, uint64_t ver, int64_t now)
{
    bool agree = lsn == 0 ? ver == 0 : lsn <= r->last_lsn && version_at(r, lsn) == (int64_t)ver;
    if (!agree) {
        start_snapshot(r, p, now);
        return;
    }
    /* Reports echoing what we sent before this decision describe the past. */
    p->report_floor = p->state == PEER_STREAMING ? now : now + 1;
    p->state = PEER_STREAMING;
    p->next = lsn + 1;
    p->base = lsn;
    p->rlen = 0;
    uint64_t before = p->next;
    pump(r, p, now);
    /* Nothing to send: a beacon now, whose ack sets match. */
    if (p->state == PEER_STREAMING && p->next == before) send_append(r, p, now, false);
}

/* Invariant 4: an answer to a message we sent at `echo`, under this
 * version, extends that replica's lease to echo + lease_ms. */
static void lease_grant(repl_t *r, peer *p, int64_t echo, int64_t now)
{
    if (echo < r->adopted_at || echo > now) return; /* not one of ours under this version */
    int64_t until = echo + r->par.lease_ms;
    if (until > p->lease_until) p->lease_until = until;
}

static void commit_update(repl_t *r)
{
    if (r->role != REPL_PRIMARY) return;
    uint64_t c = r->durable;
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i].secondary || r->peers[i].promote_pending) c = min_u64(c, r->peers[i].match);
    if (c <= r->commit) return;
    /* Invariant 2: durable here and acknowledged by every secondary.
     * Invariant 5: a lapsed secondary stays in the min until a
     * configuration without it arrives; a learner whose promotion is asked
     * counts too, so it holds every committed write once it is promoted. */
    assert(c <= r->durable && r->durable <= r->last_lsn);
    for (size_t i = 0; i < r->npeers; i++)
        assert(!(r->peers[i].secondary || r->peers[i].promote_pending) || r->peers[i].match >= c);
    r->commit = c;
    r->io.committed(r->io.data, c);
}

static void learner_check(repl_t *r, peer *p, int64_t now)
{
    if (p->secondary || p->state != PEER_STREAMING || r->cfg.nsec >= REPL_MAX_MEMBERS) return;
    if (!p->promote_pending) {
        /* Caught up: within a batch of our last entry and holding
         * everything that may be committed — what we committed, and what
         * our predecessors may have (our whole log when we took over; our
         * commit index does not know it).  Counting it for commit from now
         * on then keeps it so (invariant 5). */
        if (p->match < r->commit || p->match < r->adopted_last ||
            r->last_lsn - p->match > r->par.max_batch)
            return;
        p->promote_pending = true;
    } else if (now - p->promote_asked_at < r->par.lease_ms) {
        return;
    }
    p->promote_asked_at = now;
    r->io.request_promote_learner(r->io.data, &r->cfg, p->id);
}

/* A replica reported progress on our stream within a lease (plus the time
 * to apply what it had then: it is silent while it applies), and what we
 * sent it could still be arriving and being applied at the slowest rate we
 * wait for.  repl.h, "Large entries". */
static bool progressing(const repl_t *r, const peer *p, int64_t now)
{
    int64_t apply = (int64_t)(p->progress_bytes / REPL_SLOW_BYTES_PER_MS);
    return now - p->progress_at < r->par.lease_ms + apply && now < p->drained_by + r->par.lease_ms;
}

/* Invariant 5: a secondary (or learner being promoted) whose lease lapsed
 * holds commit back; ask for a configuration without it, again every
 * lease_ms while it stays lapsed — unless it is progressing(), and then
 * lease_ms after its last PROGRESS at the latest. */
static void lease_check(repl_t *r, int64_t now)
{
    if (now - r->adopted_at < r->par.lease_ms) return; /* give everyone one lease to answer */
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        if (!p->secondary && !p->promote_pending) continue;
        if (p->lease_until > now) {
            p->remove_asked = false;
            continue;
        }
        /* Lapsed, but alive and busy with a large transfer: not yet (only
         * the removal waits: commit still needs its ack, invariant 5, and
         * serving its lease, invariant 4). */
        if (progressing(r, p, now)) continue;
        if (p->remove_asked && now - p->remove_asked_at < r->par.lease_ms) continue;
        p->remove_asked = true;
        p->remove_asked_at = now;
        r->io.request_remove(r->io.data, &r->cfg, p->id);
    }
}

/* The end of a drain without a new configuration: serve again, but only on
 * leases from answers to messages sent from now on (after now: a fenced
 * message may have left in this very millisecond, and replicas void the
 * leases for everything sent up to it).  The next beacons, due in a
 * millisecond, ask for them. */
static void unfence(repl_t *r, int64_t now)
{
    r->fenced = false;
    r->lease_from = now + 1;
    for (size_t i = 0; i < r->npeers; i++) r->peers[i].last_sent = now + 1 - r->par.beacon_ms;
}

static void primary_tick(repl_t *r, int64_t now)
{
    if (r->fenced && now >= r->fence_until) unfence(r, now); /* the manager never came back */
    int64_t rto = r->par.lease_ms / 2;
    for (size_t i = 0; i < r->npeers; i++) {
        peer *p = &r->peers[i];
        if (p->state == PEER_STREAMING && p->rlen && now - p->ring[p->rhead].at >= rto &&
            now >= p->ring[p->rhead].due && now - p->progress_at >= rto) {
            /* Unacknowledged too long (for its size), and the replica no
             * longer reports our stream arriving: send again from what we
             * know it has. */
            p->next = p->base + 1;
            p->rlen = 0;
            p->report_floor = now;
        }
        pump(r, p, now);
        if (now - p->last_sent >= r->par.beacon_ms) beacon(r, p, now);
        learner_check(r, p, now);
    }
    lease_check(r, now);
}

/* A reply from a replica of ours at our version, or NULL. */
static peer *reply_peer(repl_t *r, const repl_msg *m)
{
    if (m->version > r->cfg.version) {
        r->stale = true; /* invariant 1 */
        return NULL;
    }
    if (r->role != REPL_PRIMARY || r->stale || m->version != r->cfg.version) return NULL;
    return peer_find(r, m->from);
}

static void on_sync_reply(repl_t *r, const repl_msg *m, int64_t now)
{
    peer *p = reply_peer(r, m);
    if (!p) return;
    lease_grant(r, p, m->sent_at, now);
    if (p->state == PEER_SYNCING || (p->state == PEER_STREAMING && m->sent_at >= p->report_floor))
        decide(r, p, m->lsn, m->entry_version, now);
}

static void on_ack(repl_t *r, const repl_msg *m, int64_t now)
{
    peer *p = reply_peer(r, m);
    if (!p) return;
    lease_grant(r, p, m->sent_at, now);
    if (m->lsn <= r->last_lsn) { /* anything else is not about our log */
        if (m->lsn > p->match) p->match = m->lsn;
        if (m->lsn > p->base) p->base = m->lsn;
        ring_ack(r, p, m->lsn);
    }
    commit_update(r);
    pump(r, p, now);
    learner_check(r, p, now);
}

/* Evidence that it is alive and reading our stream; no lease (4). */
static void on_progress(repl_t *r, const repl_msg *m, int64_t now)
{
    peer *p = reply_peer(r, m);
    if (!p) return;
    p->progress_at = now;
    p->progress_bytes = m->commit;
}

static void on_reject(repl_t *r, const repl_msg *m)
{
    if (m->version > r->cfg.version) {
        /* Invariant 1: deposed, or about to learn of a new version; serve
         * nothing and act on nothing until the configuration arrives. */
        r->stale = true;
        return;
    }
    if (r->role != REPL_PRIMARY || m->version != r->cfg.version) return;
    peer *p = peer_find(r, m->from);
    if (p) p->lease_until = 0; /* invariant 4: it has asked for our removal */
}

/* ================================================================
 * Replica
 * ================================================================ */

static void reject(repl_t *r, const repl_msg *m, int64_t now)
{
    repl_msg a = msg_new(r, REPL_REJECT, m->from, now);
    if (r->floor > a.version) a.version = r->floor;
    r->io.send(r->io.data, &a);
}

/* Invariant 4, from the granting side: the lease an answer gives its
 * primary ends (primary's clock, from its send time) no later than
 * lease_ms after we answer (our clock).  We serve as primary only after
 * every lease we granted has run out, whatever the manager decides —
 * except those for messages sent no later than a fenced one: the primary
 * gave them up when it fenced (note_fence). */
static void granted(repl_t *r, int64_t echo, int64_t now)
{
    if (echo <= r->fence_hi) return; /* it will never count this answer */
    if (now + r->par.lease_ms > r->granted_cur) r->granted_cur = now + r->par.lease_ms;
    if (echo > r->granted_echo) r->granted_echo = echo;
}

/* A message from our primary at our version.  A fenced one says that its
 * sender, from before sending it until it resumes, serves nothing and
 * counts no lease for anything sent up to it (repl.h, "Handing over"):
 * the leases we granted for those are void. */
static void note_fence(repl_t *r, const repl_msg *m)
{
    if (!(m->flags & REPL_F_FENCED)) return;
    if (m->sent_at > r->fence_hi) r->fence_hi = m->sent_at;
    /* Every answer behind granted_cur echoed a message sent no later than
     * granted_echo; if that is covered too, none of them counts.  (Else
     * one answered a later message — delivered out of order — and they
     * all stand.) */
    if (r->granted_echo <= r->fence_hi) {
        r->granted_cur = 0;
        r->granted_echo = INT64_MIN;
    }
}

/* Our real position, answering the message (echoed) we could not take. */
static void report_position(repl_t *r, const repl_msg *m, int64_t now)
{
    granted(r, m->sent_at, now);
    repl_msg a = msg_new(r, REPL_SYNC_REPLY, m->from, m->sent_at);
    a.lsn = r->last_lsn;
    a.entry_version = r->last_version;
    r->io.send(r->io.data, &a);
}

static void ackq_push(repl_t *r, uint64_t end, int64_t at)
{
    if (r->qlen == r->qcap) { /* full: fold into the newest */
        flight *f = &r->ackq[(r->qhead + r->qlen - 1) % r->qcap];
        if (end > f->end) f->end = end;
        f->at = at;
        return;
    }
    r->ackq[(r->qhead + r->qlen) % r->qcap] = (flight){end, at, 0};
    r->qlen++;
}

/* Acknowledge every accepted message whose entries are now durable. */
static void ack_flush(repl_t *r, int64_t now)
{
    if (!is_replica(r) || r->stale || r->refusing) return;
    bool any = false;
    uint64_t lsn = r->acked_upto;
    int64_t echo = 0;
    while (r->qlen && r->ackq[r->qhead].end <= r->durable) {
        flight *f = &r->ackq[r->qhead];
        if (f->end > lsn) lsn = f->end;
        echo = f->at;
        any = true;
        r->qhead = (r->qhead + 1) % r->qcap;
        r->qlen--;
    }
    if (!any) return;
    /* Invariant 4: never an answer to a primary we asked to remove. */
    assert(!r->refusing);
    assert(lsn <= r->durable && lsn <= r->last_lsn);
    r->acked_upto = lsn;
    granted(r, echo, now);
    repl_msg a = msg_new(r, REPL_ACK, r->cfg.primary, echo);
    a.lsn = lsn;
    r->io.send(r->io.data, &a);
}

static void adopt(repl_t *r, const repl_config *c, int64_t now);

static void on_sync(repl_t *r, const repl_msg *m, int64_t now)
{
    if (too_old(r, m->version)) { /* invariant 1 */
        reject(r, m, now);
        return;
    }
    const repl_config *c = m->cfg;
    if (!c || c->version != m->version || c->shard != m->shard || c->primary != m->from ||
        !cfg_valid(c))
        return;
    enum repl_role mine = role_in(c, r->self);
    if (mine != REPL_SECONDARY && mine != REPL_LEARNER) return;
    if (m->version > r->cfg.version) adopt(r, c, now);
    else if (c->primary != r->cfg.primary) return;
    if (!is_replica(r) || r->stale) return;
    if (r->refusing) {
        reject(r, m, now);
        return;
    }
    r->heard_at = now;
    note_fence(r, m);
    report_position(r, m, now);
}

static void on_append(repl_t *r, const repl_msg *m, int64_t now)
{
    if (too_old(r, m->version)) { /* invariant 1 */
        reject(r, m, now);
        return;
    }
    if (m->version > r->cfg.version) {
        r->stale = true; /* invariant 1: its SYNC (or the manager) will bring the config */
        return;
    }
    if (!is_replica(r) || r->stale || m->from != r->cfg.primary) return;
    if (r->refusing) {
        reject(r, m, now);
        return;
    }
    /* Shape: consecutive entries after (lsn, entry_version), no version
     * newer than the message's (0: written before the node joined a
     * group). */
    if ((m->nentries && !m->entries) || (m->lsn == 0 && m->entry_version != 0)) return;
    for (size_t i = 0; i < m->nentries; i++)
        if (m->entries[i].lsn != m->lsn + 1 + i || m->entries[i].version > m->version) return;
    r->heard_at = now;
    note_fence(r, m);

    uint64_t prev = m->lsn, end = m->lsn + m->nentries;
    /* Invariant 6: take it only where it continues our log: a gap (a lost
     * message) or another version at prev means our position must be
     * decided again. */
    if (prev > r->last_lsn || version_at(r, prev) != (int64_t)m->entry_version) {
        report_position(r, m, now);
        return;
    }
    if (m->nentries && prev < r->last_lsn) {
        /* Overlap: the last entry we both hold must be the same one. */
        uint64_t k = min_u64(end, r->last_lsn);
        if (version_at(r, k) != (int64_t)m->entries[k - prev - 1].version) {
            report_position(r, m, now);
            return;
        }
    }
    if (end > r->last_lsn) {
        const repl_entry *fresh = &m->entries[r->last_lsn - prev];
        size_t n = (size_t)(end - r->last_lsn);
        assert(fresh[0].lsn == r->last_lsn + 1); /* no gap, no overlap */
        r->io.append(r->io.data, fresh, n);
        r->last_lsn = end;
        r->last_version = fresh[n - 1].version;
    }
    /* Our log agrees with the primary's up to `end`. */
    uint64_t c = min_u64(m->commit, end);
    if (c > r->commit) {
        r->commit = c;
        r->io.committed(r->io.data, c);
    }
    ackq_push(r, end, m->sent_at);
    ack_flush(r, now);
}

static void replica_tick(repl_t *r, int64_t now)
{
    if (r->role != REPL_SECONDARY || r->stale || r->cfg.primary == 0) return;
    if (!r->refusing) {
        if (now - r->heard_at < r->par.grace_ms) return;
        /* Invariant 4: silent for grace_ms, so the lease we granted ran out
         * grace_ms - lease_ms ago.  From now on we answer it nothing but
         * REJECT at this version, so it cannot regain that lease. */
        r->refusing = true;
        r->qlen = 0;
    } else if (now - r->remove_asked_at < r->par.grace_ms) {
        return;
    }
    r->remove_asked_at = now;
    r->io.request_remove(r->io.data, &r->cfg, r->cfg.primary);
}

/* ================================================================
 * Configuration
 * ================================================================ */

static void adopt(repl_t *r, const repl_config *c, int64_t now)
{
    /* Invariant 1: versions only grow, and never back to one this node
     * may have acted at before a restart. */
    assert(c->version > r->cfg.version && c->version > r->floor);
    r->cfg = *c;
    r->role = role_in(c, r->self);
    r->stale = false;
    r->adopted_at = now;
    if (!r->started) {
        /* Before this start we may have granted leases we no longer know of. */
        r->started = true;
        r->granted_until = now + r->par.lease_ms;
    }
    /* Leases granted under the version we leave still run; the fence of
     * its primary no longer concerns us. */
    if (r->granted_cur > r->granted_until) r->granted_until = r->granted_cur;
    r->granted_cur = 0;
    r->granted_echo = INT64_MIN;
    r->fence_hi = INT64_MIN;
    r->fenced = false;
    r->lease_from = 0;

    r->heard_at = now;
    r->refusing = false;
    r->remove_asked_at = 0;
    r->progress_sent_at = INT64_MIN / 4;
    r->acked_upto = 0;
    r->qhead = r->qlen = 0;

    r->npeers = 0;
    r->adopted_last = r->last_lsn;
    if (r->role != REPL_PRIMARY) return;
    if (r->last_version >= c->version) {
        /* Our log already has entries of this version: we were its primary
         * before a restart and may have lost some, whose LSNs we would
         * reuse.  Wait for another version (repl.h). */
        r->stale = true;
        return;
    }
    for (size_t i = 0; i < c->nsec + c->nlearn; i++) {
        peer *p = &r->peers[r->npeers++];
        flight *ring = p->ring;
        memset(p, 0, sizeof(*p));
        p->ring = ring;
        p->secondary = i < c->nsec;
        p->id = p->secondary ? c->secondaries[i] : c->learners[i - c->nsec];
        p->state = PEER_SYNCING;
        p->progress_at = INT64_MIN / 4;
    }
    for (size_t i = 0; i < r->npeers; i++) send_sync(r, &r->peers[i], now);
}

void repl_set_config(repl_t *r, const repl_config *cfg, int64_t now)
{
    if (too_old(r, cfg->version) || cfg->version == r->cfg.version || !cfg_valid(cfg)) return;
    if (r->cfg.version && cfg->shard != r->cfg.shard) return;
    adopt(r, cfg, now);
    serving_update(r, now);
}

/* ================================================================
 * Entry points
 * ================================================================ */

void repl_local_append(repl_t *r, uint64_t lsn, int64_t now)
{
    assert(r->role == REPL_PRIMARY && lsn == r->last_lsn + 1);
    assert(!r->fenced && "no write while handing over: the last LSN is final");
    r->last_lsn = lsn;
    r->last_version = r->cfg.version;
    assert(r->io.entry_version(r->io.data, lsn) == (int64_t)r->cfg.version);
    for (size_t i = 0; i < r->npeers; i++) pump(r, &r->peers[i], now);
    serving_update(r, now);
}

void repl_local_append_upto(repl_t *r, uint64_t lsn, int64_t now)
{
    assert(r->role == REPL_PRIMARY && lsn >= r->last_lsn);
    if (lsn == r->last_lsn) return;
    assert(!r->fenced && "no write while handing over: the last LSN is final");
    for (uint64_t l = r->last_lsn + 1; l <= lsn; l++)
        assert(r->io.entry_version(r->io.data, l) == (int64_t)r->cfg.version);
    r->last_lsn = lsn;
    r->last_version = r->cfg.version;
    /* One pump for the whole batch: entries leave in as few APPENDs as
     * max_batch allows, instead of one message per write. */
    for (size_t i = 0; i < r->npeers; i++) pump(r, &r->peers[i], now);
    serving_update(r, now);
}

void repl_local_durable(repl_t *r, uint64_t lsn, int64_t now)
{
    assert(lsn <= r->last_lsn);
    if (lsn > r->durable) r->durable = lsn;
    if (r->role == REPL_PRIMARY) commit_update(r);
    else ack_flush(r, now);
    serving_update(r, now);
}

void repl_recv(repl_t *r, const repl_msg *m, int64_t now)
{
    if (m->to != r->self || m->from == 0 || m->from == r->self) return;
    if (r->cfg.version && m->shard != r->cfg.shard) return;
    switch (m->type) {
    case REPL_SYNC: on_sync(r, m, now); break;
    case REPL_APPEND: on_append(r, m, now); break;
    case REPL_SYNC_REPLY: on_sync_reply(r, m, now); break;
    case REPL_ACK: on_ack(r, m, now); break;
    case REPL_PROGRESS: on_progress(r, m, now); break;
    case REPL_REJECT: on_reject(r, m); break;
    default: break; /* REPL_SNAPSHOT belongs to the host */
    }
    serving_update(r, now);
}

void repl_stream_progress(repl_t *r, uint64_t from, uint64_t version, uint64_t bytes,
                          int64_t now)
{
    if (!is_replica(r) || r->stale || r->refusing || from != r->cfg.primary ||
        version != r->cfg.version || from == 0)
        return;
    /* Invariant 4 is unaffected: this only delays our request to remove
     * the primary; the leases we granted stay what our answers gave. */
    r->heard_at = now;
    if (now - r->progress_sent_at < r->par.beacon_ms / 2) return;
    r->progress_sent_at = now;
    repl_msg a = msg_new(r, REPL_PROGRESS, r->cfg.primary, now);
    a.lsn = r->last_lsn;
    a.entry_version = r->last_version;
    a.commit = bytes;
    r->io.send(r->io.data, &a);
}

void repl_tick(repl_t *r, int64_t now)
{
    if (r->role == REPL_PRIMARY && !r->stale) primary_tick(r, now);
    else replica_tick(r, now);
    serving_update(r, now);
}

void repl_snapshot_sent(repl_t *r, uint64_t to, uint64_t lsn, int64_t now)
{
    if (r->role != REPL_PRIMARY || r->stale) return;
    peer *p = peer_find(r, to);
    if (!p || p->state != PEER_SNAPSHOT || lsn > r->last_lsn) return;
    /* It holds our state at lsn, durably: it agrees with our log there. */
    p->state = PEER_STREAMING;
    p->report_floor = now + 1;
    p->next = lsn + 1;
    p->base = lsn;
    p->rlen = 0;
    if (lsn > p->match) p->match = lsn;
    commit_update(r);
    pump(r, p, now);
    learner_check(r, p, now);
    serving_update(r, now);
}

void repl_snapshot_failed(repl_t *r, uint64_t to, int64_t now)
{
    if (r->role != REPL_PRIMARY || r->stale) return;
    peer *p = peer_find(r, to);
    if (!p || p->state != PEER_SNAPSHOT) return;
    /* Ask where it stands at the next beacon (not at once: a host that
     * fails every time would otherwise be asked again every round trip),
     * then decide again. */
    p->state = PEER_SYNCING;
    p->last_sent = now;
}

bool repl_snapshot_wanted(const repl_t *r, uint64_t from, uint64_t version, uint64_t lsn)
{
    /* Only the current primary's, and never below what we acknowledged
     * (its match[] counts on it) or saw committed. */
    return is_replica(r) && !r->stale && !r->refusing && from == r->cfg.primary &&
           version == r->cfg.version && lsn >= r->acked_upto && lsn >= r->commit;
}

void repl_snapshot_loaded(repl_t *r, uint64_t lsn, uint64_t version, int64_t now)
{
    assert(is_replica(r) && lsn >= r->acked_upto && lsn >= r->commit);
    assert(lsn != 0 || version == 0);
    r->last_lsn = lsn;
    r->last_version = version;
    r->durable = lsn;
    /* The primary counts it as acknowledged (repl_snapshot_sent): a slower,
     * older transfer must not take us back below it. */
    r->acked_upto = lsn;
    r->qhead = r->qlen = 0; /* what they vouched for was about the old log */
    r->heard_at = now;
    serving_update(r, now);
}

/* ---- queries ---- */

enum repl_role repl_role(const repl_t *r) { return r->role; }

const repl_config *repl_config_get(const repl_t *r) { return &r->cfg; }

bool repl_can_serve(const repl_t *r, int64_t now)
{
    if (r->role != REPL_PRIMARY || r->stale || r->fenced || now < r->granted_until ||
        now < r->granted_cur)
        return false;
    /* Invariant 4: a lease from every secondary, each granted under this
     * version (adopt() cleared them) and, after a fence, for a message sent
     * since (lease_from) — and from every learner whose promotion we asked
     * for: the manager may make it a secondary at any moment, and its grace
     * timer then starts while we may still be at this version, needing
     * nothing from it. */
    for (size_t i = 0; i < r->npeers; i++) {
        const peer *p = &r->peers[i];
        if ((p->secondary || p->promote_pending) &&
            (p->lease_until <= now || p->lease_until < r->lease_from + r->par.lease_ms))
            return false;
    }
    return true;
}

/* ---- handing over ---- */

bool repl_drain_start(repl_t *r, uint64_t version, int64_t until, int64_t now)
{
    if (r->role != REPL_PRIMARY || r->stale || version != r->cfg.version) return false;
    bool was = r->fenced;
    r->fenced = true;
    r->fence_until = until;
    if (!was) {
        /* Tell every replica now, ahead of anything the manager will do:
         * a fenced message voids the leases it granted us (note_fence). */
        for (size_t i = 0; i < r->npeers; i++) beacon(r, &r->peers[i], now);
    }
    serving_update(r, now);
    return true;
}

void repl_drain_stop(repl_t *r, int64_t now)
{
    if (!r->fenced) return;
    unfence(r, now);
    serving_update(r, now);
}

enum repl_drain repl_drain_state(const repl_t *r)
{
    if (r->role != REPL_PRIMARY || r->stale || !r->fenced) return REPL_DRAIN_NONE;
    return r->commit >= r->last_lsn ? REPL_DRAIN_DRAINED : REPL_DRAIN_DRAINING;
}

int64_t repl_drain_until(const repl_t *r) { return r->fence_until; }

uint64_t repl_commit(const repl_t *r) { return r->commit; }

uint64_t repl_last_lsn(const repl_t *r) { return r->last_lsn; }

uint64_t repl_match(const repl_t *r, uint64_t node)
{
    if (r->role != REPL_PRIMARY) return 0;
    for (size_t i = 0; i < r->npeers; i++)
        if (r->peers[i].id == node) return r->peers[i].match;
    return 0;
}
