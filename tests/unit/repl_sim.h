/*
 * repl_sim.h — a deterministic in-memory cluster for lib/repl (canonical
 * raft's fixture idea), included by test_repl.c only.
 *
 *   clock     one global `now`, stepped 1 ms per sim_tick()
 *   nodes     ids 1..n, each a repl_t with an in-memory log (every entry is
 *             kept, even below a snapshot point, so the checks can read it)
 *             and a fake disk (an entry is durable disk_delay ms after it
 *             was logged); up, crashed or paused
 *   network   one FIFO queue per directed link, delay in [dmin, dmax] ms,
 *             random loss (drop_pm per mille); cut[a][b] drops a -> b, at
 *             send and at delivery; a paused node takes no input (its
 *             queues wait), sends nothing, and its disk reports nothing
 *   crash     the log is cut back to the durable point, the repl_t is
 *             destroyed, queues to and from the node are emptied and what
 *             was addressed to the dead process is never delivered (TCP);
 *   restart   a new repl_t on the durable log, with repl_set_floor() at the
 *             newest version the node had (what the host keeps on disk);
 *             the node registers with the manager (again every 20 ms until
 *             it is) and gets pushed configurations only once it has
 *   snapshots taken at send_snapshot(), delivered snap_delay/2..3/2 ms
 *             later (so they can overtake each other), loaded only if
 *             repl_snapshot_wanted(); the sender hears of it a link delay
 *             later (repl_snapshot_sent / _failed)
 *   manager   node 0 on the network: holds the authoritative configuration;
 *             REMOVE / PROMOTE by compare-and-swap on the version (an old
 *             version fails); removing the primary promotes the requester
 *             if it is a secondary (with pick_best: never), else the live
 *             secondary with the highest LSN; a member that re-registers
 *             after a restart gets a new version (a primary's role passes
 *             to a live secondary); pushes the configuration on every
 *             change and every push_every ms; with auto_learn, adds live
 *             non-members back as learners
 *   switchover sim_switchover(): the manager tells the primary to hand over
 *             (DRAIN, with a deadline), polls it every 2 ms, and once it
 *             reports itself drained with the target holding its last LSN
 *             writes the configuration with the target as primary (by
 *             compare-and-swap on the version it started from); past its
 *             own deadline it sends RESUME instead; `forget` plays a
 *             manager that dies after sending DRAIN
 *   clients   sim_write() logs a write at the node that can serve and
 *             records it acknowledged once that node, still primary, has
 *             committed it
 *
 * sim_check(), after every tick, asserts:
 *   - invariant 4: at most one node can serve at any instant, and the one
 *     that can holds every acknowledged write (reads there are
 *     linearizable);
 *   - commit indexes never go backwards on a node within one version;
 *   - invariant 2: a primary's commit is durable on it and on every
 *     secondary of its configuration;
 *   - invariant 5: every acknowledged write is in the log (same LSN, same
 *     payload) of every member (primary, secondaries) of the manager's
 *     configuration as far as that log reaches, and the primary's log
 *     reaches the newest one;
 *   - invariant 1: a message of an older version never appends to a log
 *     (io_append() fails while one is being delivered).
 * Any failure prints the seed and the simulated time, then aborts;
 * REPL_TRACE=1 logs every delivery, fault and configuration.
 */
#ifndef REPL_SIM_H
#define REPL_SIM_H

#include <assert.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/repl.h"

#define SIM_MAX 6 /* nodes 1..SIM_MAX; 0 is the manager */
#define SIM_MGR 0
#define SIM_FAIL(...)                                                                      \
    do {                                                                                   \
        fprintf(stderr, "sim: t=%lld seed=%llu: ", (long long)s->now,                      \
                (unsigned long long)s->seed);                                              \
        fprintf(stderr, __VA_ARGS__);                                                      \
        fprintf(stderr, "\n");                                                             \
        abort();                                                                           \
    } while (0)
#define SIM_ASSERT(cond, ...)                                                              \
    do {                                                                                   \
        if (!(cond)) SIM_FAIL(__VA_ARGS__);                                                \
    } while (0)

typedef struct sim sim;

typedef struct sim_ent {
    uint64_t lsn, version, payload;
    int64_t logged_at;
} sim_ent;

typedef enum {
    SM_REPL,
    SM_CONFIG,
    SM_REMOVE,
    SM_PROMOTE,
    SM_REGISTER,
    SM_HEARTBEAT,
    SM_DRAIN,        /* manager -> primary: hand over (version, ms, node = target) */
    SM_DRAIN_STATUS, /* manager -> primary: how far? (version, node = target) */
    SM_RESUME,       /* manager -> primary: give up (version) */
    SM_DRAIN_REPORT  /* primary -> manager: version, drain, lsn, match */
} sim_kind;

typedef struct sim_msg {
    struct sim_msg *next;
    sim_kind kind;
    int64_t at; /* delivery time */
    repl_msg m; /* SM_REPL; pointers into the fields below */
    repl_entry *ents;
    uint64_t *pay;
    repl_config cfg; /* SM_REPL (SYNC), SM_CONFIG */
    uint64_t version, node; /* SM_REMOVE (victim), SM_PROMOTE (learner), SM_DRAIN* */
    int64_t ms;             /* SM_DRAIN */
    enum repl_drain drain;  /* SM_DRAIN_REPORT */
    uint64_t lsn, match;    /* SM_DRAIN_REPORT: last LSN, the target's acknowledged LSN */
    uint64_t to_inc;        /* the receiver's incarnation when sent */
} sim_msg;

/* The manager's switchover in progress. */
typedef struct sim_swo {
    bool active;
    uint64_t from_version, primary, target;
    int64_t started, deadline, next_poll;
    bool forget; /* the manager "dies" after DRAIN: nothing more is sent */
} sim_swo;

typedef struct sim_link {
    sim_msg *head, *tail;
    int64_t last_at;
} sim_link;

typedef struct sim_node {
    sim *s;
    uint64_t id;
    repl_t *r;
    bool up, paused;
    uint64_t inc; /* incarnation: +1 per crash */
    sim_ent *log;
    size_t nlog, cap;
    uint64_t compacted; /* read_log() below or at it fails; a snapshot point */
    uint64_t durable;
    /* observations */
    uint64_t seen_version, seen_commit;
    uint64_t max_version; /* newest adopted: what the host keeps on disk for repl_set_floor() */
    uint64_t chk_upto; /* log checked against acked writes up to here */
    bool member;       /* of the manager's configuration, at the last check */
    uint64_t snapshots_sent, snapshots_loaded, appended;
    int64_t last_served;  /* last tick at which repl_can_serve() held; -1 never */
    int64_t first_served; /* first such tick; -1 never */
    /* random-fault bookkeeping */
    int64_t fault_until;
    int fault; /* 0 none, 1 crashed, 2 paused */
} sim_node;

typedef struct sim_snap {
    struct sim_snap *next;
    int64_t at;
    int stage; /* 0 transfer, 1 confirm ok, 2 confirm failed */
    uint64_t from, to, from_inc, version, lsn;
    sim_ent *ents;
    size_t n;
} sim_snap;

typedef struct sim_pending {
    uint64_t lsn, payload, node, inc;
} sim_pending;

struct sim {
    uint64_t seed, rng;
    int64_t now;
    size_t n;
    repl_params par;
    sim_node nodes[SIM_MAX + 1];
    sim_link links[SIM_MAX + 1][SIM_MAX + 1];
    bool cut[SIM_MAX + 1][SIM_MAX + 1];
    unsigned drop_pm; /* loss, per mille */
    int64_t dmin, dmax, disk_delay, snap_delay;
    bool in_old_msg; /* delivering a message of an older version (invariant 1) */
    bool no_floor;   /* restarted nodes get no repl_set_floor() */
    bool no_bump;    /* the manager gives re-registering members no new version */
    bool pick_best;  /* removing the primary promotes the best secondary, not the requester */
    /* manager */
    repl_config cfg;
    bool reg[SIM_MAX + 1];
    int64_t hb[SIM_MAX + 1];
    int64_t push_every, next_push, next_auto;
    bool auto_learn;
    uint64_t cas_ok, cas_failed;
    sim_swo swo;
    uint64_t switchovers, switch_aborts;
    int64_t switched_at; /* when the last switchover wrote its configuration */
    /* clients */
    sim_pending *pend;
    size_t npend, cappend;
    uint64_t *acked; /* acked[lsn] = payload, 0 = none */
    size_t ackcap;
    uint64_t max_acked, nacked, next_payload;
    sim_snap *snaps;
    uint64_t sent[REPL_REJECT + 1];
    /* optional: sees every repl message a node sends */
    void (*trace)(sim *s, const repl_msg *m);
    bool verbose; /* REPL_TRACE=1: log deliveries, faults, configurations */
};

static void sim_log(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sim_log(sim *s, const char *fmt, ...)
{
    if (!s->verbose) return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%6lld ", (long long)s->now);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* ---- random ---- */

static uint64_t sim_rand(sim *s)
{
    s->rng ^= s->rng >> 12;
    s->rng ^= s->rng << 25;
    s->rng ^= s->rng >> 27;
    return s->rng * 2685821657736338717ULL;
}

static int64_t sim_between(sim *s, int64_t lo, int64_t hi)
{
    return lo + (int64_t)(sim_rand(s) % (uint64_t)(hi - lo + 1));
}

static bool sim_chance(sim *s, unsigned per_million) { return sim_rand(s) % 1000000 < per_million; }

/* ---- logs ---- */

static void log_push(sim_node *nd, uint64_t version, uint64_t payload, int64_t at)
{
    if (nd->nlog == nd->cap) {
        nd->cap = nd->cap ? nd->cap * 2 : 256;
        nd->log = cairn_realloc(nd->log, nd->cap * sizeof(*nd->log));
    }
    nd->log[nd->nlog] = (sim_ent){nd->nlog + 1, version, payload, at};
    nd->nlog++;
}

static uint64_t log_last_version(const sim_node *nd)
{
    return nd->nlog ? nd->log[nd->nlog - 1].version : 0;
}

/* ---- network ---- */

static void msg_free(sim_msg *q)
{
    cairn_free(q->ents);
    cairn_free(q->pay);
    cairn_free(q);
}

static void link_clear(sim_link *l)
{
    while (l->head) {
        sim_msg *q = l->head;
        l->head = q->next;
        msg_free(q);
    }
    l->tail = NULL;
}

static void net_enqueue(sim *s, uint64_t from, uint64_t to, sim_msg *q)
{
    if (s->cut[from][to] || (s->drop_pm && sim_rand(s) % 1000 < s->drop_pm)) {
        msg_free(q);
        return;
    }
    sim_link *l = &s->links[from][to];
    q->to_inc = to == SIM_MGR ? 0 : s->nodes[to].inc; /* a connection dies with its process */
    int64_t at = s->now + sim_between(s, s->dmin, s->dmax);
    if (at < l->last_at) at = l->last_at; /* FIFO per link */
    l->last_at = at;
    q->at = at;
    q->next = NULL;
    if (l->tail) l->tail->next = q;
    else l->head = q;
    l->tail = q;
}

static sim_msg *msg_new_kind(sim_kind k)
{
    sim_msg *q = cairn_calloc(1, sizeof(*q));
    q->kind = k;
    return q;
}

/* ---- the host side of repl_io ---- */

static void io_send(void *data, const repl_msg *m)
{
    sim_node *nd = data;
    sim *s = nd->s;
    SIM_ASSERT(m->from == nd->id && m->to >= 1 && m->to <= s->n && m->to != nd->id,
               "bad addressing %llu -> %llu", (unsigned long long)m->from,
               (unsigned long long)m->to);
    SIM_ASSERT(m->version == repl_config_get(nd->r)->version ||
                   (m->type == REPL_REJECT && m->version > repl_config_get(nd->r)->version),
               "node %llu sent a message of version %llu at version %llu",
               (unsigned long long)nd->id, (unsigned long long)m->version,
               (unsigned long long)repl_config_get(nd->r)->version);
    s->sent[m->type]++;
    if (s->trace) s->trace(s, m);
    sim_msg *q = msg_new_kind(SM_REPL);
    q->m = *m;
    if (m->nentries) {
        q->ents = cairn_malloc(m->nentries * sizeof(*q->ents));
        q->pay = cairn_malloc(m->nentries * sizeof(*q->pay));
        for (size_t i = 0; i < m->nentries; i++) {
            SIM_ASSERT(m->entries[i].len == sizeof(uint64_t), "payload size");
            memcpy(&q->pay[i], m->entries[i].payload, sizeof(uint64_t));
            q->ents[i] = m->entries[i];
            q->ents[i].payload = &q->pay[i];
        }
        q->m.entries = q->ents;
    }
    if (m->cfg) {
        q->cfg = *m->cfg;
        q->m.cfg = &q->cfg;
    }
    net_enqueue(s, nd->id, m->to, q);
}

static int io_read_log(void *data, uint64_t from, size_t max, repl_entry *out)
{
    sim_node *nd = data;
    if (from <= nd->compacted) return -1;
    if (from > nd->nlog) return 0;
    size_t n = 0;
    for (uint64_t l = from; l <= nd->nlog && n < max; l++, n++) {
        const sim_ent *e = &nd->log[l - 1];
        out[n] = (repl_entry){e->lsn, e->version, &e->payload, sizeof(e->payload)};
    }
    return (int)n;
}

static int64_t io_entry_version(void *data, uint64_t lsn)
{
    sim_node *nd = data;
    if (lsn == 0) return 0;
    if (lsn < nd->compacted || lsn > nd->nlog) return -1;
    return (int64_t)nd->log[lsn - 1].version;
}

static void io_send_snapshot(void *data, uint64_t to)
{
    sim_node *nd = data;
    sim *s = nd->s;
    nd->snapshots_sent++;
    sim_log(s, "node %llu sends a snapshot to %llu at %zu", (unsigned long long)nd->id,
            (unsigned long long)to, nd->nlog);
    sim_snap *sn = cairn_calloc(1, sizeof(*sn));
    sn->at = s->now + sim_between(s, s->snap_delay / 2, s->snap_delay * 3 / 2); /* may overtake */
    sn->from = nd->id;
    sn->to = to;
    sn->from_inc = nd->inc;
    sn->version = repl_config_get(nd->r)->version;
    sn->lsn = nd->nlog;
    sn->n = nd->nlog;
    sn->ents = cairn_malloc((sn->n ? sn->n : 1) * sizeof(*sn->ents));
    if (sn->n) memcpy(sn->ents, nd->log, sn->n * sizeof(*sn->ents));
    sn->next = s->snaps;
    s->snaps = sn;
}

static void io_append(void *data, const repl_entry *e, size_t n)
{
    sim_node *nd = data;
    sim *s = nd->s;
    /* Invariant 1: a message of an older version never changes a log. */
    SIM_ASSERT(!s->in_old_msg, "node %llu appended from a message of an older version",
               (unsigned long long)nd->id);
    SIM_ASSERT(n > 0 && e[0].lsn == nd->nlog + 1, "append at %llu onto a log ending at %zu",
               (unsigned long long)e[0].lsn, nd->nlog);
    for (size_t i = 0; i < n; i++) {
        uint64_t p;
        memcpy(&p, e[i].payload, sizeof(p));
        log_push(nd, e[i].version, p, s->now);
    }
    nd->appended += n;
}

static void mgr_send(sim *s, uint64_t from, sim_msg *q) { net_enqueue(s, from, SIM_MGR, q); }

static void io_request_remove(void *data, const repl_config *cfg, uint64_t victim)
{
    sim_node *nd = data;
    sim_msg *q = msg_new_kind(SM_REMOVE);
    q->version = cfg->version;
    q->node = victim;
    mgr_send(nd->s, nd->id, q);
}

static void io_request_promote(void *data, const repl_config *cfg, uint64_t node)
{
    sim_node *nd = data;
    sim_msg *q = msg_new_kind(SM_PROMOTE);
    q->version = cfg->version;
    q->node = node;
    mgr_send(nd->s, nd->id, q);
}

static void io_committed(void *data, uint64_t commit)
{
    sim_node *nd = data;
    if (repl_role(nd->r) == REPL_PRIMARY)
        sim_log(nd->s, "node %llu commits %llu", (unsigned long long)nd->id,
                (unsigned long long)commit);
}
static void io_serving(void *data, bool serving) { (void)data, (void)serving; }

static void node_start(sim *s, sim_node *nd)
{
    repl_io io = {.data = nd,
                  .send = io_send,
                  .read_log = io_read_log,
                  .entry_version = io_entry_version,
                  .send_snapshot = io_send_snapshot,
                  .append = io_append,
                  .request_remove = io_request_remove,
                  .request_promote_learner = io_request_promote,
                  .committed = io_committed,
                  .serving = io_serving};
    nd->r = repl_create(nd->id, &s->par, &io);
    repl_set_log(nd->r, nd->nlog, log_last_version(nd), nd->durable);
    if (!s->no_floor) repl_set_floor(nd->r, nd->max_version);
    nd->up = true;
    nd->paused = false;
    nd->seen_version = nd->seen_commit = 0;
    nd->chk_upto = 0;
}

/* ---- manager ---- */

static bool in_ids(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

static bool ids_del(uint64_t *v, size_t *n, uint64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == id) {
            memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
            (*n)--;
            return true;
        }
    return false;
}

static bool cfg_member(const repl_config *c, uint64_t id)
{
    return c->primary == id || in_ids(c->secondaries, c->nsec, id) ||
           in_ids(c->learners, c->nlearn, id);
}

static void mgr_push(sim *s, uint64_t to)
{
    if (!s->reg[to]) return; /* a restarted node hears nothing before it registers */
    sim_msg *q = msg_new_kind(SM_CONFIG);
    q->cfg = s->cfg;
    net_enqueue(s, SIM_MGR, to, q);
}

static void mgr_push_all(sim *s)
{
    for (uint64_t i = 1; i <= s->n; i++) mgr_push(s, i);
}

static void mgr_change(sim *s, repl_config *next)
{
    next->version = s->cfg.version + 1;
    sim_log(s, "manager: version %llu, primary %llu, %zu secondaries (first %llu), %zu learners",
            (unsigned long long)next->version, (unsigned long long)next->primary, next->nsec,
            (unsigned long long)(next->nsec ? next->secondaries[0] : 0), next->nlearn);
    s->cfg = *next;
    s->cas_ok++;
    mgr_push_all(s);
}

static bool mgr_live(sim *s, uint64_t id) { return s->reg[id] && s->now - s->hb[id] <= 100; }

/* The live secondary with the highest LSN (invariant 5: any secondary holds
 * every committed write; the highest loses the fewest uncommitted ones). */
static uint64_t mgr_best_secondary(sim *s)
{
    uint64_t best = 0, best_lsn = 0;
    for (size_t i = 0; i < s->cfg.nsec; i++) {
        uint64_t id = s->cfg.secondaries[i];
        sim_node *nd = &s->nodes[id];
        if (!nd->up || !mgr_live(s, id)) continue;
        uint64_t l = repl_last_lsn(nd->r);
        if (!best || l > best_lsn) best = id, best_lsn = l;
    }
    return best;
}

static void mgr_remove(sim *s, uint64_t requester, uint64_t version, uint64_t victim)
{
    if (version != s->cfg.version || victim == requester || !cfg_member(&s->cfg, victim)) {
        s->cas_failed++;
        return;
    }
    repl_config c = s->cfg;
    if (victim == c.primary) {
        uint64_t pick = in_ids(c.secondaries, c.nsec, requester) && !s->pick_best
                            ? requester
                            : mgr_best_secondary(s);
        if (!pick) {
            s->cas_failed++;
            return;
        }
        ids_del(c.secondaries, &c.nsec, pick);
        c.primary = pick;
    } else if (!ids_del(c.secondaries, &c.nsec, victim)) {
        ids_del(c.learners, &c.nlearn, victim);
    }
    mgr_change(s, &c);
}

static void mgr_promote(sim *s, uint64_t requester, uint64_t version, uint64_t learner)
{
    repl_config c = s->cfg;
    if (version != c.version || requester != c.primary || !in_ids(c.learners, c.nlearn, learner) ||
        c.nsec >= REPL_MAX_MEMBERS) {
        s->cas_failed++;
        return;
    }
    ids_del(c.learners, &c.nlearn, learner);
    c.secondaries[c.nsec++] = learner;
    mgr_change(s, &c);
}

/* A node came back from a crash.  It must not act again at a version it
 * may have acted at (repl.h): a member gets a new version, and a primary
 * hands its role to a live secondary when there is one. */
static void mgr_register(sim *s, uint64_t id)
{
    s->reg[id] = true;
    s->hb[id] = s->now;
    if (!cfg_member(&s->cfg, id) || s->no_bump) {
        mgr_push(s, id);
        return;
    }
    repl_config c = s->cfg;
    if (c.primary == id) {
        uint64_t pick = mgr_best_secondary(s);
        if (pick && c.nlearn < REPL_MAX_MEMBERS) {
            ids_del(c.secondaries, &c.nsec, pick);
            c.primary = pick;
            c.learners[c.nlearn++] = id;
        }
    }
    mgr_change(s, &c);
}

/* ---- switchover ---- */

static void mgr_swo_send(sim *s, sim_kind k)
{
    sim_msg *q = msg_new_kind(k);
    q->version = s->swo.from_version;
    q->node = s->swo.target;
    q->ms = s->swo.deadline - s->now;
    net_enqueue(s, SIM_MGR, s->swo.primary, q);
}

/* Hand the primary role to `target` (a secondary), the primary draining
 * for at most `ms`.  False if the configuration does not allow it. */
static bool sim_switchover(sim *s, uint64_t target, int64_t ms, bool forget)
{
    if (s->swo.active || !in_ids(s->cfg.secondaries, s->cfg.nsec, target)) return false;
    s->swo = (sim_swo){.active = true, .from_version = s->cfg.version, .primary = s->cfg.primary,
                       .target = target, .started = s->now, .deadline = s->now + ms,
                       .next_poll = s->now + 2, .forget = forget};
    sim_log(s, "manager: switchover of version %llu to %llu (%lld ms%s)",
            (unsigned long long)s->cfg.version, (unsigned long long)target, (long long)ms,
            forget ? ", then the manager dies" : "");
    mgr_swo_send(s, SM_DRAIN);
    if (forget) s->swo.active = false;
    return true;
}

static void mgr_swo_abort(sim *s, const char *why)
{
    sim_log(s, "manager: switchover aborted: %s", why);
    mgr_swo_send(s, SM_RESUME);
    s->swo.active = false;
    s->switch_aborts++;
}

/* A configuration is written only well before the primary's own deadline
 * (it resumes by itself then): the margin covers the compare-and-swap. */
#define SIM_SWO_MARGIN 5

static void mgr_swo_report(sim *s, const sim_msg *q)
{
    sim_swo *w = &s->swo;
    if (!w->active || q->version != w->from_version) return;
    if (s->cfg.version != w->from_version || !in_ids(s->cfg.secondaries, s->cfg.nsec, w->target)) {
        mgr_swo_abort(s, "the configuration changed");
        return;
    }
    if (q->drain != REPL_DRAIN_DRAINED || q->match < q->lsn) return; /* poll again */
    if (s->now >= w->deadline - SIM_SWO_MARGIN) {
        mgr_swo_abort(s, "too late");
        return;
    }
    repl_config c = s->cfg;
    ids_del(c.secondaries, &c.nsec, w->target);
    memmove(c.secondaries + 1, c.secondaries, c.nsec * sizeof(uint64_t));
    c.secondaries[0] = c.primary;
    c.nsec++;
    c.primary = w->target;
    w->active = false;
    s->switchovers++;
    s->switched_at = s->now;
    mgr_change(s, &c);
}

static void mgr_swo_tick(sim *s)
{
    sim_swo *w = &s->swo;
    if (!w->active) return;
    if (s->now >= w->deadline - SIM_SWO_MARGIN) {
        mgr_swo_abort(s, "the primary did not drain in time");
    } else if (s->now >= w->next_poll) {
        mgr_swo_send(s, SM_DRAIN_STATUS);
        w->next_poll = s->now + 2;
    }
}

/* The node's side: DRAIN, DRAIN_STATUS and RESUME, answered with a report. */
static void node_drain_msg(sim *s, sim_node *nd, const sim_msg *q)
{
    if (q->kind == SM_DRAIN) repl_drain_start(nd->r, q->version, s->now + q->ms, s->now);
    else if (q->kind == SM_RESUME && repl_config_get(nd->r)->version == q->version)
        repl_drain_stop(nd->r, s->now);
    if (q->kind == SM_RESUME) return;
    sim_msg *a = msg_new_kind(SM_DRAIN_REPORT);
    a->version = repl_config_get(nd->r)->version;
    a->drain = repl_drain_state(nd->r);
    a->lsn = repl_last_lsn(nd->r);
    a->match = repl_match(nd->r, q->node);
    mgr_send(s, nd->id, a);
}

static void mgr_recv(sim *s, uint64_t from, sim_msg *q)
{
    switch (q->kind) {
    case SM_DRAIN_REPORT: mgr_swo_report(s, q); break;
    case SM_REMOVE: mgr_remove(s, from, q->version, q->node); break;
    case SM_PROMOTE: mgr_promote(s, from, q->version, q->node); break;
    case SM_REGISTER:
        if (!s->reg[from]) mgr_register(s, from);
        break;
    case SM_HEARTBEAT: s->hb[from] = s->now; break;
    default: SIM_FAIL("manager got message kind %d", (int)q->kind);
    }
}

static void mgr_tick(sim *s)
{
    mgr_swo_tick(s);
    if (s->now >= s->next_push) {
        s->next_push = s->now + s->push_every;
        mgr_push_all(s);
    }
    if (!s->auto_learn || s->now < s->next_auto) return;
    for (uint64_t id = 1; id <= s->n; id++) {
        if (cfg_member(&s->cfg, id) || !mgr_live(s, id) || s->cfg.nlearn >= REPL_MAX_MEMBERS)
            continue;
        repl_config c = s->cfg;
        c.learners[c.nlearn++] = id;
        mgr_change(s, &c);
        s->next_auto = s->now + 50;
        return;
    }
}

/* ---- set-up ---- */

static sim *sim_create(size_t n, uint64_t seed, const repl_params *par)
{
    assert(n >= 1 && n <= SIM_MAX);
    sim *s = cairn_calloc(1, sizeof(*s));
    s->seed = seed;
    s->rng = seed * 0x9E3779B97F4A7C15ULL + 0x2545F4914F6CDD1DULL;
    s->n = n;
    if (par) s->par = *par;
    else repl_params_init(&s->par);
    s->dmin = 1;
    s->dmax = 3;
    s->disk_delay = 2;
    s->snap_delay = 20;
    s->push_every = 100;
    s->ackcap = 1024;
    s->verbose = getenv("REPL_TRACE") != NULL;
    s->acked = cairn_calloc(s->ackcap, sizeof(*s->acked));
    for (uint64_t i = 1; i <= n; i++) {
        sim_node *nd = &s->nodes[i];
        nd->s = s;
        nd->id = i;
        nd->last_served = nd->first_served = -1;
        node_start(s, nd);
        s->reg[i] = true;
        s->hb[i] = 0;
    }
    return s;
}

/* The manager's first configuration: primary, secondaries and learners
 * from the arrays (0-terminated), pushed to everyone at once. */
static void sim_bootstrap(sim *s, uint64_t primary, const uint64_t *secs, const uint64_t *learners)
{
    repl_config c;
    memset(&c, 0, sizeof(c));
    c.shard = 7;
    c.primary = primary;
    for (; secs && *secs; secs++) c.secondaries[c.nsec++] = *secs;
    for (; learners && *learners; learners++) c.learners[c.nlearn++] = *learners;
    mgr_change(s, &c);
}

static void sim_destroy(sim *s)
{
    for (uint64_t i = 1; i <= s->n; i++) {
        repl_destroy(s->nodes[i].r);
        cairn_free(s->nodes[i].log);
    }
    for (size_t a = 0; a <= SIM_MAX; a++)
        for (size_t b = 0; b <= SIM_MAX; b++) link_clear(&s->links[a][b]);
    while (s->snaps) {
        sim_snap *sn = s->snaps;
        s->snaps = sn->next;
        cairn_free(sn->ents);
        cairn_free(sn);
    }
    cairn_free(s->pend);
    cairn_free(s->acked);
    cairn_free(s);
}

/* ---- faults ---- */

static void sim_note(sim *s, const char *what, uint64_t a, uint64_t b)
{
    sim_log(s, "fault: %s %llu %llu", what, (unsigned long long)a, (unsigned long long)b);
}

static void sim_crash(sim *s, uint64_t id)
{
    sim_node *nd = &s->nodes[id];
    assert(nd->up);
    sim_note(s, "crash", id, 0);
    repl_destroy(nd->r);
    nd->r = NULL;
    nd->up = false;
    nd->paused = false;
    nd->inc++;
    nd->nlog = nd->durable; /* what the disk had */
    if (nd->compacted > nd->nlog) nd->compacted = nd->nlog;
    for (size_t o = 0; o <= SIM_MAX; o++) {
        link_clear(&s->links[id][o]);
        link_clear(&s->links[o][id]);
    }
}

static void sim_restart(sim *s, uint64_t id)
{
    sim_node *nd = &s->nodes[id];
    assert(!nd->up);
    sim_note(s, "restart", id, 0);
    node_start(s, nd);
    s->reg[id] = false; /* configurations only after it registers */
    mgr_send(s, id, msg_new_kind(SM_REGISTER));
}

static void sim_pause(sim *s, uint64_t id)
{
    sim_note(s, "pause", id, 0);
    s->nodes[id].paused = true;
}

static void sim_resume(sim *s, uint64_t id)
{
    sim_note(s, "resume", id, 0);
    s->nodes[id].paused = false;
}

/* Cut a <-> b (both directions). */
static void sim_partition(sim *s, uint64_t a, uint64_t b, bool cut)
{
    sim_note(s, cut ? "cut" : "uncut", a, b);
    s->cut[a][b] = s->cut[b][a] = cut;
}

/* Cut `id` from every other node and from the manager. */
static void sim_isolate(sim *s, uint64_t id, bool cut)
{
    for (uint64_t o = 0; o <= s->n; o++)
        if (o != id) sim_partition(s, id, o, cut);
}

static void sim_heal(sim *s)
{
    memset(s->cut, 0, sizeof(s->cut));
    s->drop_pm = 0;
}

/* ---- clients ---- */

/* The node that can serve now, or 0. */
static uint64_t sim_server(sim *s)
{
    for (uint64_t i = 1; i <= s->n; i++) {
        sim_node *nd = &s->nodes[i];
        if (nd->up && !nd->paused && repl_can_serve(nd->r, s->now)) return i;
    }
    return 0;
}

/* A client write at the node that can serve: its LSN, or 0 if none can. */
static uint64_t sim_write(sim *s)
{
    uint64_t id = sim_server(s);
    if (!id) return 0;
    sim_node *nd = &s->nodes[id];
    uint64_t payload = ++s->next_payload;
    log_push(nd, repl_config_get(nd->r)->version, payload, s->now);
    repl_local_append(nd->r, nd->nlog, s->now);
    if (s->npend == s->cappend) {
        s->cappend = s->cappend ? 2 * s->cappend : 64;
        s->pend = cairn_realloc(s->pend, s->cappend * sizeof(*s->pend));
    }
    s->pend[s->npend++] = (sim_pending){nd->nlog, payload, id, nd->inc};
    return nd->nlog;
}

static void check_member_entry(sim *s, sim_node *nd, uint64_t lsn)
{
    uint64_t want = s->acked[lsn];
    if (!want || lsn > nd->nlog) return;
    SIM_ASSERT(nd->log[lsn - 1].payload == want,
               "node %llu (a member of version %llu) has payload %llu at LSN %llu; acknowledged "
               "was %llu (invariant 5)",
               (unsigned long long)nd->id, (unsigned long long)s->cfg.version,
               (unsigned long long)nd->log[lsn - 1].payload, (unsigned long long)lsn,
               (unsigned long long)want);
}

static bool sim_is_member(sim *s, uint64_t id)
{
    return s->cfg.primary == id || in_ids(s->cfg.secondaries, s->cfg.nsec, id);
}

static void ack_record(sim *s, uint64_t lsn, uint64_t payload)
{
    while (lsn >= s->ackcap) {
        s->acked = cairn_realloc(s->acked, 2 * s->ackcap * sizeof(*s->acked));
        memset(s->acked + s->ackcap, 0, s->ackcap * sizeof(*s->acked));
        s->ackcap *= 2;
    }
    SIM_ASSERT(s->acked[lsn] == 0 || s->acked[lsn] == payload,
               "LSN %llu acknowledged twice: payloads %llu and %llu (one of them is lost)",
               (unsigned long long)lsn, (unsigned long long)s->acked[lsn],
               (unsigned long long)payload);
    if (s->acked[lsn]) return;
    s->acked[lsn] = payload;
    s->nacked++;
    if (lsn > s->max_acked) s->max_acked = lsn;
    for (uint64_t i = 1; i <= s->n; i++)
        if (s->nodes[i].up && sim_is_member(s, i)) check_member_entry(s, &s->nodes[i], lsn);
}

/* Acknowledge the writes whose node, still primary, has committed them. */
static void sim_acks(sim *s)
{
    size_t k = 0;
    for (size_t i = 0; i < s->npend; i++) {
        sim_pending p = s->pend[i];
        sim_node *nd = &s->nodes[p.node];
        bool gone = !nd->up || nd->inc != p.inc || p.lsn > nd->nlog ||
                    nd->log[p.lsn - 1].payload != p.payload || repl_role(nd->r) != REPL_PRIMARY;
        if (gone) continue; /* the client gets an error: not acknowledged */
        if (repl_commit(nd->r) >= p.lsn) {
            ack_record(s, p.lsn, p.payload);
            continue;
        }
        s->pend[k++] = p;
    }
    s->npend = k;
}

/* ---- checks ---- */

static void sim_check(sim *s)
{
    /* Invariant 4: two primaries never serve at once. */
    uint64_t serving = 0;
    for (uint64_t i = 1; i <= s->n; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->up || !repl_can_serve(nd->r, s->now)) continue;
        SIM_ASSERT(!serving, "nodes %llu and %llu can both serve (invariant 4)",
                   (unsigned long long)serving, (unsigned long long)i);
        serving = i;
        nd->last_served = s->now;
        /* Reads here are linearizable only if it holds every write
         * acknowledged so far (the newest one stands for the rest; members
         * are checked in full below). */
        uint64_t ma = s->max_acked;
        SIM_ASSERT(nd->nlog >= ma && (!ma || nd->log[ma - 1].payload == s->acked[ma]),
                   "node %llu serves without acknowledged LSN %llu", (unsigned long long)i,
                   (unsigned long long)s->max_acked);
        if (nd->first_served < 0) nd->first_served = s->now;
    }
    for (uint64_t i = 1; i <= s->n; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->up) {
            nd->member = false;
            continue;
        }
        const repl_config *c = repl_config_get(nd->r);
        uint64_t commit = repl_commit(nd->r);
        if (c->version > nd->max_version) nd->max_version = c->version;
        /* Commit never goes backwards within a version. */
        if (c->version == nd->seen_version)
            SIM_ASSERT(commit >= nd->seen_commit, "node %llu: commit went from %llu to %llu",
                       (unsigned long long)i, (unsigned long long)nd->seen_commit,
                       (unsigned long long)commit);
        nd->seen_version = c->version;
        nd->seen_commit = commit;
        SIM_ASSERT(commit <= nd->nlog && repl_last_lsn(nd->r) == nd->nlog,
                   "node %llu: commit %llu, repl last %llu, log %zu", (unsigned long long)i,
                   (unsigned long long)commit, (unsigned long long)repl_last_lsn(nd->r), nd->nlog);
        /* Invariant 2: a primary's commit is durable on it and on every
         * secondary of its configuration. */
        if (repl_role(nd->r) == REPL_PRIMARY) {
            SIM_ASSERT(commit <= nd->durable, "primary %llu commits %llu beyond its durable %llu",
                       (unsigned long long)i, (unsigned long long)commit,
                       (unsigned long long)nd->durable);
            for (size_t k = 0; k < c->nsec; k++) {
                sim_node *sec = &s->nodes[c->secondaries[k]];
                if (sec->up)
                    SIM_ASSERT(commit <= sec->durable,
                               "primary %llu commits %llu; secondary %llu has %llu durable",
                               (unsigned long long)i, (unsigned long long)commit,
                               (unsigned long long)sec->id, (unsigned long long)sec->durable);
            }
        }
        /* Invariant 5: members hold every acknowledged write. */
        bool member = sim_is_member(s, i);
        if (member && !nd->member) nd->chk_upto = 0;
        nd->member = member;
        if (!member) continue;
        uint64_t upto = nd->nlog < s->max_acked ? nd->nlog : s->max_acked;
        for (uint64_t l = nd->chk_upto + 1; l <= upto; l++) check_member_entry(s, nd, l);
        if (upto > nd->chk_upto) nd->chk_upto = upto;
        if (s->cfg.primary == i)
            SIM_ASSERT(nd->nlog >= s->max_acked,
                       "primary %llu of version %llu lacks acknowledged LSN %llu (log ends at %zu)",
                       (unsigned long long)i, (unsigned long long)s->cfg.version,
                       (unsigned long long)s->max_acked, nd->nlog);
    }
}

/* ---- the clock ---- */

static void deliver(sim *s, uint64_t from, uint64_t to, sim_msg *q)
{
    if (to == SIM_MGR) {
        mgr_recv(s, from, q);
        return;
    }
    sim_node *nd = &s->nodes[to];
    if (q->kind == SM_CONFIG) {
        if (q->cfg.version > repl_config_get(nd->r)->version)
            sim_log(s, "node %llu gets version %llu", (unsigned long long)to,
                    (unsigned long long)q->cfg.version);
        repl_set_config(nd->r, &q->cfg, s->now);
        return;
    }
    if (q->kind == SM_DRAIN || q->kind == SM_DRAIN_STATUS || q->kind == SM_RESUME) {
        node_drain_msg(s, nd, q);
        return;
    }
    assert(q->kind == SM_REPL);
    sim_log(s, "%llu->%llu %s%s v%llu sent %lld lsn %llu ev %llu commit %llu n %zu",
            (unsigned long long)from, (unsigned long long)to, repl_msg_name(q->m.type),
            (q->m.flags & REPL_F_FENCED) ? "/fenced" : "",
            (unsigned long long)q->m.version, (long long)q->m.sent_at,
            (unsigned long long)q->m.lsn, (unsigned long long)q->m.entry_version,
            (unsigned long long)q->m.commit, q->m.nentries);
    s->in_old_msg = q->m.version < repl_config_get(nd->r)->version;
    repl_recv(nd->r, &q->m, s->now);
    s->in_old_msg = false;
}

static void net_tick(sim *s)
{
    for (uint64_t a = 0; a <= s->n; a++)
        for (uint64_t b = 0; b <= s->n; b++) {
            sim_link *l = &s->links[a][b];
            while (l->head && l->head->at <= s->now) {
                if (b != SIM_MGR && s->nodes[b].paused) break; /* held */
                sim_msg *q = l->head;
                l->head = q->next;
                if (!l->head) l->tail = NULL;
                bool ok = !s->cut[a][b] &&
                          (b == SIM_MGR || (s->nodes[b].up && s->nodes[b].inc == q->to_inc));
                if (ok) deliver(s, a, b, q);
                msg_free(q);
            }
        }
}

static void snap_tick(sim *s)
{
    sim_snap **pp = &s->snaps;
    while (*pp) {
        sim_snap *sn = *pp;
        if (sn->at > s->now) {
            pp = &sn->next;
            continue;
        }
        sim_node *src = &s->nodes[sn->from], *dst = &s->nodes[sn->to];
        bool src_ok = src->up && src->inc == sn->from_inc;
        bool done = true;
        if (!src_ok) {
            /* the sender died: the transfer died with it */
        } else if (sn->stage == 0) {
            if (dst->paused) {
                done = false;
            } else {
                bool ok = dst->up && !s->cut[sn->from][sn->to] && !s->cut[sn->to][sn->from] &&
                          repl_snapshot_wanted(dst->r, sn->from, sn->version, sn->lsn);
                if (ok) { /* the replica swaps its state in, durably */
                    dst->nlog = 0;
                    for (size_t i = 0; i < sn->n; i++)
                        log_push(dst, sn->ents[i].version, sn->ents[i].payload, INT64_MIN / 2);
                    dst->compacted = sn->lsn;
                    dst->durable = sn->lsn;
                    dst->chk_upto = 0;
                    dst->snapshots_loaded++;
                    repl_snapshot_loaded(dst->r, sn->lsn,
                                         sn->lsn ? sn->ents[sn->lsn - 1].version : 0, s->now);
                }
                sn->stage = ok ? 1 : 2;
                sn->at = s->now + sim_between(s, s->dmin, s->dmax);
                done = false;
            }
        } else if (src->paused) {
            done = false;
        } else if (sn->stage == 1) {
            sim_log(s, "node %llu: snapshot at %llu loaded by %llu", (unsigned long long)sn->from,
                    (unsigned long long)sn->lsn, (unsigned long long)sn->to);
            repl_snapshot_sent(src->r, sn->to, sn->lsn, s->now);
        } else {
            sim_log(s, "node %llu: snapshot to %llu failed", (unsigned long long)sn->from,
                    (unsigned long long)sn->to);
            repl_snapshot_failed(src->r, sn->to, s->now);
        }
        if (done) {
            *pp = sn->next;
            cairn_free(sn->ents);
            cairn_free(sn);
        } else {
            if (sn->at <= s->now) sn->at = s->now + 1;
            pp = &sn->next;
        }
    }
}

static void disk_tick(sim *s)
{
    for (uint64_t i = 1; i <= s->n; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->up || nd->paused) continue;
        uint64_t d = nd->durable;
        while (d < nd->nlog && nd->log[d].logged_at + s->disk_delay <= s->now) d++;
        if (d == nd->durable) continue;
        nd->durable = d;
        repl_local_durable(nd->r, d, s->now);
    }
}

/* One millisecond: deliver, finish transfers and disk writes, tick every
 * live node, let the manager act, acknowledge writes, check. */
static void sim_tick(sim *s)
{
    s->now++;
    net_tick(s);
    snap_tick(s);
    disk_tick(s);
    for (uint64_t i = 1; i <= s->n; i++) {
        sim_node *nd = &s->nodes[i];
        if (!nd->up || nd->paused) continue;
        repl_tick(nd->r, s->now);
        if (s->now % 20 == (int64_t)i % 20) /* registering until the manager has it */
            mgr_send(s, i, msg_new_kind(s->reg[i] ? SM_HEARTBEAT : SM_REGISTER));
    }
    mgr_tick(s);
    sim_acks(s);
    sim_check(s);
}

static void sim_run(sim *s, int64_t ms)
{
    for (int64_t i = 0; i < ms; i++) sim_tick(s);
}

/* Tick until cond(s) holds or `ms` pass; true if it held. */
static bool sim_until(sim *s, bool (*cond)(sim *), int64_t ms)
{
    for (int64_t i = 0; i < ms; i++) {
        if (cond(s)) return true;
        sim_tick(s);
    }
    return cond(s);
}

static bool sim_has_server(sim *s) { return sim_server(s) != 0; }

#endif
