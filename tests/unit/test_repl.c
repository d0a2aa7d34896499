/*
 * test_repl.c — lib/repl in a deterministic in-memory cluster (repl_sim.h):
 * steady replication, secondary and primary failures, a paused primary, a
 * stale message, an isolated primary, two simultaneous promotion requests,
 * returning replicas (divergent: snapshot; prefix: stream; behind a
 * compacted log: snapshot), learner promotion, a lossy network, restarted
 * nodes, a switchover without a drain, handing over (drained switchovers,
 * back and forth, a drain that expires without its manager, one called
 * off, the fence on both sides), large entries that take longer than a
 * lease to deliver (no removal while progress is reported, either side;
 * removal once it stops; no serving without leases meanwhile; with a
 * capture io, not the sim, whose payloads are 8 bytes), and random faults — switchovers
 * included — over many seeds.  sim_check() asserts the replication
 * invariants after every simulated millisecond.
 *
 * Random runs: 3 to 5 nodes, lease 40 ms / grace 80 ms, link, disk and
 * snapshot speeds and fault rates varying with the seed; 5,000 ms of
 * crashes, restarts, pauses, partitions (the manager included) and loss,
 * then 1,500 ms healed, after which a primary must serve, every write be
 * acknowledged and every member hold the primary's log.
 *
 *   REPL_SEEDS=n        run seeds 1..n (default 200); REPL_SEED=k only k
 *   REPL_TICKS=ms       length of the faulty part (default 5000)
 *   REPL_FAULT_RATE=ppm faults per million ms; REPL_MAX_FAULTS=k at once
 *   REPL_TRACE=1        log every delivery, fault and configuration
 *   REPL_NO_FLOOR=1, REPL_NO_BUMP=1, REPL_SAFETY_ONLY=1
 *                       take away a safeguard (repl_set_floor, the
 *                       manager's new version for a restarted member) and
 *                       skip the liveness checks, to see what it prevents
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "repl_sim.h"

typedef struct fixture {
    sim *s;
} fixture;

static int setup(void **state)
{
    fixture *f = cairn_calloc(1, sizeof(*f));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    if (f->s) sim_destroy(f->s);
    cairn_free(f);
    return 0;
}

static const uint64_t SECS_23[] = {2, 3, 0};

/* Three nodes, node 1 primary of version 1 with secondaries 2 and 3,
 * ticked until node 1 serves. */
static sim *boot3(fixture *f, const repl_params *par)
{
    f->s = sim_create(3, 1, par);
    sim_bootstrap(f->s, 1, SECS_23, NULL);
    assert_true(sim_until(f->s, sim_has_server, 1000));
    assert_int_equal(sim_server(f->s), 1);
    return f->s;
}

static bool no_pending(sim *s) { return s->npend == 0; }

/* Submit n writes (one per tick while someone serves), then wait for them. */
static void write_acked(sim *s, int n)
{
    assert_true(sim_until(s, no_pending, 3000)); /* earlier writes first */
    uint64_t before = s->nacked;
    for (int i = 0; i < n;) {
        if (sim_write(s)) i++;
        sim_tick(s);
    }
    assert_true(sim_until(s, no_pending, 3000));
    assert_int_equal(s->nacked, before + (uint64_t)n);
}

/* Tick ms times, offering a write every `every` ms. */
static void run_writing(sim *s, int64_t ms, int64_t every)
{
    for (int64_t i = 0; i < ms; i++) {
        if (s->now % every == 0) sim_write(s);
        sim_tick(s);
    }
}

static void assert_logs_equal(sim *s, uint64_t a, uint64_t b, uint64_t upto)
{
    sim_node *x = &s->nodes[a], *y = &s->nodes[b];
    assert_true(x->nlog >= upto && y->nlog >= upto);
    for (uint64_t l = 1; l <= upto; l++) {
        assert_int_equal(x->log[l - 1].payload, y->log[l - 1].payload);
        assert_int_equal(x->log[l - 1].version, y->log[l - 1].version);
    }
}

/* ---- steady state ---- */

static void steady_replication_1000_writes_commit_after_all_acks(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    /* 1,000 writes, a few per millisecond. */
    for (int i = 0; i < 1000;) {
        assert_true(sim_write(s) != 0);
        if (++i % 3 == 0) sim_tick(s);
    }
    assert_true(sim_until(s, no_pending, 2000));
    assert_int_equal(s->nacked, 1000);
    assert_int_equal(repl_commit(s->nodes[1].r), 1000);
    sim_run(s, 300); /* a beacon carries the commit index to the secondaries */
    for (uint64_t i = 1; i <= 3; i++) {
        assert_int_equal(s->nodes[i].nlog, 1000);
        assert_int_equal(repl_commit(s->nodes[i].r), 1000);
        assert_int_equal(s->nodes[i].snapshots_sent, 0);
    }
    assert_logs_equal(s, 1, 2, 1000);
    assert_logs_equal(s, 1, 3, 1000);
    assert_int_equal(s->cfg.version, 1);

    /* Node 3 stops hearing node 1 (for less than a lease): nothing more
     * commits, however durable it is on nodes 1 and 2. */
    s->cut[1][3] = true;
    for (int i = 0; i < 10; i++) assert_true(sim_write(s) != 0);
    sim_run(s, 100);
    assert_int_equal(s->nodes[2].durable, 1010);
    assert_int_equal(repl_commit(s->nodes[1].r), 1000);
    assert_int_equal(s->nacked, 1000);
    s->cut[1][3] = false;
    assert_true(sim_until(s, no_pending, 1000)); /* the gap is found and resent */
    assert_int_equal(s->nacked, 1010);
    assert_int_equal(s->cfg.version, 1);
}

/* ---- failures ---- */

static bool removed_3(sim *s) { return s->cfg.version == 2; }

static void secondary_crash_is_removed_and_writes_continue(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 100);
    int64_t t0 = s->now;
    sim_crash(s, 3);
    /* Writes stall (commit needs node 3) until the lease lapses and the
     * primary has it removed (invariant 5). */
    uint64_t acked = s->nacked;
    for (int64_t i = 0; i < 2000 && !removed_3(s); i++) {
        if (s->now % 5 == 0) sim_write(s);
        sim_tick(s);
    }
    assert_true(removed_3(s));
    assert_true(s->now - t0 <= s->par.lease_ms + s->par.beacon_ms + 50);
    assert_int_equal(s->cfg.primary, 1);
    assert_int_equal(s->cfg.nsec, 1);
    assert_int_equal(s->cfg.secondaries[0], 2);
    assert_int_equal(s->nacked, acked); /* nothing committed without node 3 */
    run_writing(s, 1000, 5);
    assert_true(s->nacked > acked + 100);
    assert_true(sim_until(s, no_pending, 1000));
    assert_logs_equal(s, 1, 2, s->max_acked);
}

static void primary_crash_promotes_a_secondary(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 100);
    int64_t t0 = s->now;
    sim_crash(s, 1);
    assert_true(sim_until(s, sim_has_server, 3000));
    int64_t dt = s->now - t0;
    /* Not before the grace period (invariant 4), and soon after it. */
    assert_true(dt >= s->par.grace_ms - s->par.beacon_ms);
    assert_true(dt <= s->par.grace_ms + 50);
    uint64_t p = sim_server(s);
    assert_true(p == 2 || p == 3);
    assert_int_equal(s->cfg.primary, p);
    assert_int_equal(s->cfg.version, 2);
    /* Every acknowledged write survived; new ones commit on the pair. */
    assert_true(s->nodes[p].nlog >= 100);
    write_acked(s, 50);
    assert_logs_equal(s, 2, 3, s->max_acked);
}

static int64_t paused_lease_end;

static void paused_primary_loses_its_lease_and_rejoins_without_serving(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    s->auto_learn = true;
    write_acked(s, 100);
    int64_t t0 = s->now;
    paused_lease_end = t0 + s->par.lease_ms;
    sim_pause(s, 1);
    sim_node *old = &s->nodes[1];
    /* SIGSTOP-like: longer than the grace period.  Its lease runs out
     * while it is stopped, whatever it may believe on waking. */
    for (int64_t i = 0; i < 2 * s->par.grace_ms; i++) {
        if (s->now % 5 == 0) sim_write(s);
        sim_tick(s);
        if (s->now >= paused_lease_end) assert_false(repl_can_serve(old->r, s->now));
    }
    assert_true(s->cfg.primary == 2 || s->cfg.primary == 3);
    assert_true(s->cfg.version >= 2);
    uint64_t acked = s->nacked;
    assert_true(acked > 100); /* the new primary took writes */

    sim_resume(s, 1);
    for (int64_t i = 0; i < 3000; i++) {
        if (s->now % 5 == 0) sim_write(s);
        sim_tick(s);
        assert_false(repl_can_serve(old->r, s->now));
    }
    assert_true(old->last_served < paused_lease_end);
    /* It learned the new version and came back as a replica. */
    assert_int_equal(repl_config_get(old->r)->version, s->cfg.version);
    enum repl_role role = repl_role(old->r);
    assert_true(role == REPL_LEARNER || role == REPL_SECONDARY);
    assert_true(s->nacked > acked);
    assert_true(sim_until(s, no_pending, 1000));
    sim_run(s, 200);
    assert_logs_equal(s, 1, s->cfg.primary, s->max_acked);
}

static void stale_message_from_an_old_version_is_rejected(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 10);
    sim_pause(s, 1); /* deposed */
    assert_true(sim_until(s, sim_has_server, 3000));
    write_acked(s, 5);
    uint64_t v = s->cfg.version;
    assert_true(v >= 2);
    uint64_t x = s->cfg.secondaries[0]; /* a secondary of the new version */
    sim_node *nd = &s->nodes[x];
    sim_run(s, 50);
    size_t before = nd->nlog;

    /* What node 1 would still send under version 1. */
    uint64_t payload = 999999;
    repl_entry e = {before + 1, 1, &payload, sizeof(payload)};
    repl_msg m;
    memset(&m, 0, sizeof(m));
    m.type = REPL_APPEND;
    m.shard = 7;
    m.version = 1;
    m.from = 1;
    m.to = x;
    m.sent_at = s->now;
    m.lsn = before;
    m.entry_version = nd->log[before - 1].version;
    m.entries = &e;
    m.nentries = 1;
    s->in_old_msg = true; /* io_append() fails the test if it is called */
    repl_recv(nd->r, &m, s->now);
    s->in_old_msg = false;
    assert_int_equal(nd->nlog, before);
    sim_msg *q = s->links[x][1].tail;
    assert_non_null(q);
    assert_int_equal(q->m.type, REPL_REJECT);
    assert_int_equal(q->m.version, v);

    /* A SYNC of version 1 changes nothing either. */
    repl_config old = {.shard = 7, .version = 1, .primary = 1, .secondaries = {2, 3}, .nsec = 2};
    memset(&m, 0, sizeof(m));
    m.type = REPL_SYNC;
    m.shard = 7;
    m.version = 1;
    m.from = 1;
    m.to = x;
    m.sent_at = s->now;
    m.cfg = &old;
    repl_recv(nd->r, &m, s->now);
    assert_int_equal(repl_config_get(nd->r)->version, v);
    assert_int_equal(repl_role(nd->r), REPL_SECONDARY);
    assert_int_equal(s->links[x][1].tail->m.type, REPL_REJECT);

    /* Node 1 wakes up, sends under version 1, is told, and stops. */
    sim_resume(s, 1);
    sim_run(s, 500);
    assert_false(repl_can_serve(s->nodes[1].r, s->now));
    assert_int_equal(repl_config_get(s->nodes[1].r)->version, s->cfg.version);
    write_acked(s, 5);
}

static void partition_isolating_the_primary_elects_another_after_it_stops(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 100);
    int64_t t0 = s->now;
    sim_isolate(s, 1, true); /* from both secondaries and the manager */
    run_writing(s, 2500, 3);
    uint64_t p = s->cfg.primary;
    assert_true(p == 2 || p == 3);
    /* Invariant 4: the old primary stopped serving (its lease ran out)
     * before the new one started. */
    assert_true(s->nodes[1].last_served < t0 + s->par.lease_ms);
    assert_true(s->nodes[p].first_served > s->nodes[1].last_served);
    assert_true(s->nodes[p].first_served >= t0 + s->par.grace_ms);
    assert_true(s->nacked > 100);
    /* The isolated node tried, in vain, to have its secondaries removed. */
    assert_int_equal(repl_config_get(s->nodes[1].r)->version, 1);
    assert_int_equal(repl_role(s->nodes[1].r), REPL_PRIMARY);
    assert_false(repl_can_serve(s->nodes[1].r, s->now));

    sim_isolate(s, 1, false);
    int64_t last = s->nodes[1].last_served;
    run_writing(s, 1000, 3);
    assert_int_equal(s->nodes[1].last_served, last);
    assert_int_equal(repl_config_get(s->nodes[1].r)->version, s->cfg.version);
    assert_int_not_equal(repl_role(s->nodes[1].r), REPL_PRIMARY);
    assert_true(sim_until(s, no_pending, 1000));
}

static void two_replicas_asking_promotion_at_once_one_config_wins(void **state)
{
    fixture *f = *state;
    repl_params par;
    repl_params_init(&par);
    f->s = sim_create(3, 1, &par);
    sim *s = f->s;
    s->dmin = s->dmax = 1; /* both hear the same beacons at the same instant */
    sim_bootstrap(s, 1, SECS_23, NULL);
    assert_true(sim_until(s, sim_has_server, 1000));
    write_acked(s, 20);
    uint64_t ok0 = s->cas_ok, failed0 = s->cas_failed;
    sim_crash(s, 1);
    assert_true(sim_until(s, sim_has_server, 3000));
    sim_run(s, 200);
    /* Both asked; the manager's compare-and-swap let exactly one through. */
    assert_int_equal(s->cas_ok, ok0 + 1);
    assert_true(s->cas_failed >= failed0 + 1);
    uint64_t winner = s->cfg.primary, loser = winner == 2 ? 3 : 2;
    assert_true(winner == 2 || winner == 3);
    assert_int_equal(s->cfg.nsec, 1);
    assert_int_equal(s->cfg.secondaries[0], loser);
    /* The other adopted the winner's configuration. */
    assert_int_equal(repl_config_get(s->nodes[loser].r)->version, s->cfg.version);
    assert_int_equal(repl_role(s->nodes[loser].r), REPL_SECONDARY);
    write_acked(s, 20);
    assert_true(repl_match(s->nodes[winner].r, loser) >= s->max_acked);
}

/* ---- returning replicas ---- */

static bool v2_exists(sim *s) { return s->cfg.version >= 2; }
static bool nodes_2_3_agree(sim *s)
{
    return s->nodes[2].nlog == s->nodes[3].nlog && sim_has_server(s);
}

static void returning_replica_with_divergent_suffix_gets_a_snapshot(void **state)
{
    fixture *f = *state;
    f->s = sim_create(3, 1, NULL);
    sim *s = f->s;
    s->dmin = s->dmax = 1;
    sim_bootstrap(s, 1, SECS_23, NULL);
    assert_true(sim_until(s, sim_has_server, 1000));
    write_acked(s, 5);
    /* Entries 6..10 reach node 2 but not node 3 (and are never acked). */
    s->cut[1][3] = true;
    for (int i = 0; i < 5; i++) assert_true(sim_write(s) != 0);
    sim_run(s, 20);
    assert_int_equal(s->nodes[2].nlog, 10);
    assert_int_equal(s->nodes[3].nlog, 5);
    assert_int_equal(s->nacked, 5);
    /* Node 1 dies; node 2 is stopped, so node 3 becomes primary. */
    sim_crash(s, 1);
    sim_pause(s, 2);
    assert_true(sim_until(s, v2_exists, 3000));
    assert_int_equal(s->cfg.primary, 3);
    sim_run(s, 100);
    assert_int_equal(s->nodes[3].snapshots_sent, 0);
    /* Node 2 returns with entries node 3 lacks: it must be replaced. */
    sim_resume(s, 2);
    assert_true(sim_until(s, nodes_2_3_agree, 3000));
    assert_true(s->nodes[3].snapshots_sent >= 1);
    assert_true(s->nodes[2].snapshots_loaded >= 1);
    write_acked(s, 10);
    assert_logs_equal(s, 2, 3, s->nodes[3].nlog);
    assert_int_equal(s->nodes[2].log[5].version, s->cfg.version); /* LSN 6 is node 3's */
}

typedef struct stream_trace {
    uint64_t from, to, min_version;
    uint64_t first_lsn; /* entries[0].lsn of the first APPEND seen; 0 none */
} stream_trace;
static stream_trace g_trace;

static void trace_first_append(sim *s, const repl_msg *m)
{
    (void)s;
    if (m->type == REPL_APPEND && m->nentries && m->from == g_trace.from && m->to == g_trace.to &&
        m->version >= g_trace.min_version && !g_trace.first_lsn)
        g_trace.first_lsn = m->entries[0].lsn;
}

static bool node3_caught_up(sim *s)
{
    return s->nodes[3].nlog == s->nodes[1].nlog && s->nodes[3].nlog > 0 &&
           repl_match(s->nodes[1].r, 3) == s->nodes[1].nlog;
}

static void returning_replica_with_a_prefix_streams_from_its_next_lsn(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    s->auto_learn = true;
    write_acked(s, 10);
    sim_pause(s, 3);
    run_writing(s, 700, 10); /* node 3 is removed; writes continue */
    assert_int_equal(s->cfg.version, 2);
    assert_false(cfg_member(&s->cfg, 3));
    assert_true(s->nacked > 20);
    size_t had = s->nodes[3].nlog;
    assert_true(had >= 10 && had < s->nodes[1].nlog);

    g_trace = (stream_trace){.from = 1, .to = 3, .min_version = 3};
    s->trace = trace_first_append;
    sim_resume(s, 3); /* comes back as a learner (version 3) */
    assert_true(sim_until(s, node3_caught_up, 3000));
    s->trace = NULL;
    assert_true(s->cfg.version >= 3);
    /* Its log is a prefix of node 1's: streamed from the next LSN. */
    assert_int_equal(g_trace.first_lsn, had + 1);
    assert_int_equal(s->nodes[1].snapshots_sent, 0);
    assert_int_equal(s->nodes[3].snapshots_loaded, 0);
    assert_logs_equal(s, 1, 3, s->nodes[1].nlog);
}

static void returning_replica_behind_a_compacted_log_gets_a_snapshot(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    s->auto_learn = true;
    write_acked(s, 10);
    sim_pause(s, 3);
    run_writing(s, 700, 10);
    assert_false(cfg_member(&s->cfg, 3));
    write_acked(s, 30);
    /* Both remaining logs now start after LSN 30 (a snapshot there). */
    s->nodes[1].compacted = s->nodes[2].compacted = 30;
    sim_resume(s, 3);
    assert_true(sim_until(s, node3_caught_up, 3000));
    assert_int_equal(s->nodes[1].snapshots_sent, 1);
    assert_int_equal(s->nodes[3].snapshots_loaded, 1);
    assert_logs_equal(s, 1, 3, s->nodes[1].nlog);
}

static bool node3_secondary(sim *s) { return in_ids(s->cfg.secondaries, s->cfg.nsec, 3); }

static void learner_catches_up_and_is_promoted(void **state)
{
    fixture *f = *state;
    f->s = sim_create(3, 1, NULL);
    sim *s = f->s;
    static const uint64_t secs[] = {2, 0};
    sim_bootstrap(s, 1, secs, NULL);
    assert_true(sim_until(s, sim_has_server, 1000));
    write_acked(s, 300);
    /* Node 3, empty, joins as a learner while writes go on. */
    s->auto_learn = true;
    for (int64_t i = 0; i < 3000 && !node3_secondary(s); i++) {
        sim_write(s);
        sim_tick(s);
    }
    assert_true(node3_secondary(s));
    assert_int_equal(s->cfg.version, 3); /* + learner, then promoted */
    assert_int_equal(s->nodes[1].snapshots_sent, 0);
    write_acked(s, 100);
    sim_run(s, 50);
    assert_int_equal(repl_role(s->nodes[3].r), REPL_SECONDARY);
    /* Now it counts for commit: it holds every acknowledged write. */
    assert_true(repl_match(s->nodes[1].r, 3) >= s->max_acked);
    assert_logs_equal(s, 1, 3, s->max_acked);
}

static void lossy_network_loses_no_acknowledged_write(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    s->drop_pm = 50; /* 5% of messages, both ways, manager included */
    uint64_t offered = 0;
    for (int64_t i = 0; i < 5000; i++) {
        if (s->now % 4 == 0 && sim_write(s)) offered++;
        sim_tick(s);
    }
    s->drop_pm = 0;
    assert_true(sim_until(s, no_pending, 2000));
    assert_true(s->nacked >= offered * 9 / 10);
    assert_true(s->sent[REPL_SYNC_REPLY] > 3); /* gaps were reported and repaired */
}

/* ---- a restarted primary ---- */

typedef struct capture {
    uint64_t sent, promotes;
    enum repl_msg_type last_type;
    uint64_t last_version;
    uint32_t last_flags;
    int64_t last_sent_at;
    uint64_t last_to;
    int64_t versions[16]; /* the log: versions[lsn], 0 = not held */
    uint64_t payload;
    size_t len;           /* entries' length as read_log reports it (0: 8); repl
                           * never reads a payload, so it may exceed `payload` */
    uint64_t removes, last_victim, progress_sent, with_entries;
    int64_t first_remove_at;
    int64_t now;          /* set by the test, for first_remove_at */
} capture;

static void cap_send(void *d, const repl_msg *m)
{
    capture *c = d;
    c->sent++;
    c->last_type = m->type;
    c->last_version = m->version;
    c->last_flags = m->flags;
    c->last_sent_at = m->sent_at;
    c->last_to = m->to;
    if (m->type == REPL_PROGRESS) c->progress_sent++;
    if (m->type == REPL_APPEND && m->nentries) c->with_entries++;
}
static int cap_read(void *d, uint64_t from, size_t max, repl_entry *out)
{
    capture *c = d;
    size_t n = 0;
    for (uint64_t l = from; l < 16 && c->versions[l] && n < max; l++, n++)
        out[n] = (repl_entry){l, (uint64_t)c->versions[l], &c->payload,
                              c->len ? c->len : sizeof(c->payload)};
    return (int)n;
}
static int64_t cap_version(void *d, uint64_t lsn)
{
    return lsn < 16 ? ((capture *)d)->versions[lsn] : -1;
}
static void cap_snap(void *d, uint64_t to) { (void)d, (void)to; }
static void cap_append(void *d, const repl_entry *e, size_t n) { (void)d, (void)e, (void)n; }
static void cap_cfg(void *d, const repl_config *c, uint64_t x)
{
    capture *cap = d;
    (void)c;
    if (!cap->removes++) cap->first_remove_at = cap->now;
    cap->last_victim = x;
}
static void cap_promote(void *d, const repl_config *c, uint64_t x)
{
    (void)c, (void)x;
    ((capture *)d)->promotes++;
}
static void cap_commit(void *d, uint64_t c) { (void)d, (void)c; }
static void cap_serving(void *d, bool b) { (void)d, (void)b; }

static repl_t *cap_repl(uint64_t self, capture *cap)
{
    repl_io io = {.data = cap, .send = cap_send, .read_log = cap_read,
                  .entry_version = cap_version, .send_snapshot = cap_snap, .append = cap_append,
                  .request_remove = cap_cfg, .request_promote_learner = cap_promote,
                  .committed = cap_commit, .serving = cap_serving};
    return repl_create(self, NULL, &io);
}

static void restarted_primary_does_not_reuse_its_version(void **state)
{
    (void)state;
    capture cap = {.versions = {0, 3, 3, 3, 3, 3}};
    repl_t *r = cap_repl(1, &cap);
    repl_set_log(r, 5, 3, 5); /* it wrote entries under version 3 before */
    repl_config c = {.shard = 7, .version = 3, .primary = 1, .secondaries = {2}, .nsec = 1};
    repl_set_config(r, &c, 1000);
    assert_int_equal(repl_role(r), REPL_PRIMARY);
    assert_int_equal(cap.sent, 0); /* no SYNC: it waits for another version */
    repl_tick(r, 1500);
    assert_int_equal(cap.sent, 0);
    assert_false(repl_can_serve(r, 1500));
    c.version = 4;
    repl_set_config(r, &c, 2000);
    assert_int_equal(cap.sent, 1); /* SYNC to node 2 */
    assert_false(repl_can_serve(r, 2000)); /* not before node 2 answers */
    repl_destroy(r);
}

/* A secondary that asked for its primary's removal at version 5, then
 * restarted, must not answer that primary at version 5 again (it would
 * give back the lease it withdrew): repl_set_floor(). */
static void restarted_secondary_does_not_take_back_its_refusal(void **state)
{
    (void)state;
    capture cap = {.versions = {0, 5, 5}};
    repl_t *r = cap_repl(2, &cap);
    repl_set_log(r, 2, 5, 2);
    repl_set_floor(r, 5);
    repl_config c = {.shard = 7, .version = 5, .primary = 1, .secondaries = {2}, .nsec = 1};
    repl_set_config(r, &c, 1000); /* ignored: not newer than the floor */
    assert_int_equal(repl_role(r), REPL_NONE);
    repl_msg m = {.type = REPL_SYNC, .shard = 7, .version = 5, .from = 1, .to = 2,
                  .sent_at = 1000, .cfg = &c};
    repl_recv(r, &m, 1000);
    assert_int_equal(cap.sent, 1);
    assert_int_equal(cap.last_type, REPL_REJECT); /* not SYNC_REPLY: no lease */
    assert_int_equal(cap.last_version, 5);
    c.version = 6; /* a new configuration: it may act again */
    m.version = 6;
    repl_recv(r, &m, 1100);
    assert_int_equal(repl_role(r), REPL_SECONDARY);
    assert_int_equal(cap.last_type, REPL_SYNC_REPLY);
    repl_destroy(r);
}

static repl_msg cap_reply(enum repl_msg_type t, uint64_t from, int64_t echo, uint64_t lsn)
{
    return (repl_msg){.type = t, .shard = 7, .version = 1, .from = from, .to = 1,
                      .sent_at = echo, .lsn = lsn, .entry_version = lsn ? 1 : 0};
}

/* From the moment the primary asks for learner 3's promotion, 3 counts
 * like a secondary: commit waits for it (so it holds every committed write
 * when the manager makes it one) and so does serving (its grace timer may
 * start any moment) — invariants 4 and 5. */
static void learner_whose_promotion_is_asked_counts_like_a_secondary(void **state)
{
    (void)state;
    capture cap = {.versions = {0, 1, 1, 1}};
    repl_t *r = cap_repl(1, &cap);
    repl_config c = {.shard = 7, .version = 1, .primary = 1, .secondaries = {2}, .nsec = 1,
                     .learners = {3}, .nlearn = 1};
    repl_set_config(r, &c, 1000);
    repl_msg m = cap_reply(REPL_SYNC_REPLY, 2, 1000, 0);
    repl_recv(r, &m, 1001);
    m = cap_reply(REPL_SYNC_REPLY, 3, 1000, 0);
    repl_recv(r, &m, 1001);
    repl_local_append(r, 1, 1500);
    repl_local_durable(r, 1, 1500);
    m = cap_reply(REPL_ACK, 2, 1500, 1);
    repl_recv(r, &m, 1502);
    assert_int_equal(repl_commit(r), 1);
    assert_true(repl_can_serve(r, 1502));
    m = cap_reply(REPL_ACK, 3, 1500, 1);
    repl_recv(r, &m, 1502);
    assert_int_equal(cap.promotes, 1); /* caught up */
    repl_local_append(r, 2, 1600);
    repl_local_durable(r, 2, 1600);
    m = cap_reply(REPL_ACK, 2, 1600, 2);
    repl_recv(r, &m, 1602);
    assert_int_equal(repl_commit(r), 1); /* 3 has not acknowledged 2 */
    m = cap_reply(REPL_ACK, 3, 1600, 2);
    repl_recv(r, &m, 1603);
    assert_int_equal(repl_commit(r), 2);
    /* Only node 2 keeps answering: the lease from 3 runs out at 2000. */
    m = cap_reply(REPL_ACK, 2, 1990, 2);
    repl_recv(r, &m, 1992);
    assert_true(repl_can_serve(r, 1999));
    assert_false(repl_can_serve(r, 2000));
    repl_destroy(r);
}

/* Snapshot transfers may finish out of order: once a replica has loaded
 * (and so vouched for) the state at 20, one at 15 must not take it back;
 * nor may a snapshot from anyone but its primary, or of another version. */
static void older_snapshot_cannot_undo_a_newer_one(void **state)
{
    (void)state;
    capture cap = {.versions = {0}};
    repl_t *r = cap_repl(2, &cap);
    repl_config c = {.shard = 7, .version = 5, .primary = 1, .secondaries = {2, 3}, .nsec = 2};
    repl_set_config(r, &c, 1000);
    assert_true(repl_snapshot_wanted(r, 1, 5, 20));
    repl_snapshot_loaded(r, 20, 5, 1001);
    assert_int_equal(repl_last_lsn(r), 20);
    assert_false(repl_snapshot_wanted(r, 1, 5, 15));
    assert_true(repl_snapshot_wanted(r, 1, 5, 25));
    assert_false(repl_snapshot_wanted(r, 3, 5, 25)); /* not its primary */
    assert_false(repl_snapshot_wanted(r, 1, 4, 25)); /* an old version */
    repl_destroy(r);
}

/* A primary that took over with LSNs 1..10 in its log does not know how
 * many of them its predecessor committed (its own commit index starts
 * low).  A learner becomes a secondary only once it holds all ten, not as
 * soon as it has passed that commit index (invariant 5). */
static void learner_is_promoted_only_once_it_holds_what_predecessors_committed(void **state)
{
    (void)state;
    capture cap = {.versions = {0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}};
    repl_t *r = cap_repl(1, &cap);
    repl_set_log(r, 10, 4, 10);
    repl_config c = {.shard = 7, .version = 5, .primary = 1, .secondaries = {2}, .nsec = 1,
                     .learners = {3}, .nlearn = 1};
    repl_set_config(r, &c, 1000);
    assert_int_equal(repl_commit(r), 0); /* node 2 has not answered */
    repl_msg m = {.type = REPL_SYNC_REPLY, .shard = 7, .version = 5, .from = 3, .to = 1,
                  .sent_at = 1000, .lsn = 2, .entry_version = 4};
    repl_recv(r, &m, 1002); /* learner 3 holds 1..2: stream 3..10 */
    assert_int_equal(cap.last_type, REPL_APPEND);
    m = (repl_msg){.type = REPL_ACK, .shard = 7, .version = 5, .from = 3, .to = 1,
                   .sent_at = 1002, .lsn = 6};
    repl_recv(r, &m, 1004);
    assert_int_equal(repl_match(r, 3), 6);
    repl_tick(r, 1005);
    assert_int_equal(cap.promotes, 0); /* past commit 0, but 7..10 may be committed */
    m.lsn = 10;
    repl_recv(r, &m, 1006);
    assert_int_equal(cap.promotes, 1);
    repl_destroy(r);
}

/* The manager moves the primary role without any grace period (a
 * switchover, or a restarted member's hand-off).  The new primary granted
 * the old one a lease; it serves only once that lease has run out, even
 * though the old primary never learns of the change.  sim_check() fails
 * the test if both serve at once. */
static bool node2_serves(sim *s) { return sim_server(s) == 2; }

static void new_primary_waits_out_the_lease_it_granted(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 20);
    /* Node 1 hears nothing more from anyone: no REJECT, no configuration. */
    s->cut[2][1] = s->cut[3][1] = true;
    sim_partition(s, 1, SIM_MGR, true);
    int64_t t0 = s->now;
    repl_config c = s->cfg;
    c.primary = 2;
    c.secondaries[0] = 3;
    c.nsec = 1;
    mgr_change(s, &c);
    assert_true(sim_until(s, node2_serves, 2000));
    assert_true(s->nodes[1].last_served < s->nodes[2].first_served);
    assert_true(s->nodes[2].first_served > t0 + 20); /* it did wait */
    write_acked(s, 20);
}

/* ---- handing over (a planned switchover) ---- */

static bool no_server(sim *s) { return sim_server(s) == 0; }

/* The manager drains node 1 while writes are in flight and hands the role
 * to node 2.  Every write the old primary logged commits before the
 * configuration changes (none is lost, none answered with an error), and
 * node 2 serves at once: node 1's fenced messages told it that the leases
 * it granted no longer count, so it need not wait lease_ms (400 here). */
static void switchover_drains_then_hands_over_without_waiting_out_the_lease(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    s->disk_delay = 5;
    write_acked(s, 20);
    for (int i = 0; i < 5; i++) assert_true(sim_write(s) != 0); /* in flight */
    uint64_t acked = s->nacked;
    int64_t t0 = s->now;
    assert_true(sim_switchover(s, 2, 1000, false));
    assert_true(sim_until(s, node2_serves, 1000));
    assert_int_equal(s->switchovers, 1);
    assert_int_equal(s->nacked, acked + 5); /* the in-flight writes all committed */
    assert_int_equal(s->npend, 0);
    assert_int_equal(s->cfg.primary, 2);
    assert_int_equal(s->cfg.secondaries[0], 1); /* the old primary stays, as a secondary */
    assert_true(s->nodes[1].last_served < s->nodes[2].first_served);
    assert_true(s->nodes[2].first_served - t0 < 50);
    assert_true(s->nodes[2].first_served - s->switched_at < 20);
    write_acked(s, 20);
    assert_logs_equal(s, 1, 2, s->nodes[2].nlog);
}

/* Switchovers back and forth under a steady stream of writes: each pause
 * (no node can serve) stays far below a lease, and nothing is lost. */
static void switchover_back_and_forth_under_writes(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    uint64_t targets[] = {2, 1, 3, 1};
    for (size_t k = 0; k < 4; k++) {
        run_writing(s, 100, 2);
        int64_t t0 = s->now;
        assert_true(sim_switchover(s, targets[k], 1000, false));
        uint64_t want = targets[k];
        while (sim_server(s) != want) {
            assert_true(s->now - t0 < 200);
            if (s->now % 2 == 0) sim_write(s); /* refused while nobody serves */
            sim_tick(s);
        }
        assert_true(s->nodes[want].first_served - t0 < 50 || s->nodes[want].last_served - t0 < 50);
    }
    assert_int_equal(s->switchovers, 4);
    assert_int_equal(s->switch_aborts, 0);
    write_acked(s, 10);
}

static bool node1_serves(sim *s) { return sim_server(s) == 1; }

/* The manager dies right after DRAIN: the primary stays fenced until its
 * deadline, then serves again on its own, in the same configuration. */
static void drain_without_a_manager_resumes_at_its_deadline(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 10);
    uint64_t version = s->cfg.version;
    int64_t t0 = s->now;
    assert_true(sim_switchover(s, 2, 300, true));
    assert_true(sim_until(s, no_server, 10));
    sim_run(s, 250);
    assert_int_equal(sim_server(s), 0);
    assert_int_equal(sim_write(s), 0);
    assert_int_equal(repl_drain_state(s->nodes[1].r), REPL_DRAIN_DRAINED);
    assert_true(sim_until(s, node1_serves, 200));
    assert_true(s->now - t0 >= 300 && s->now - t0 < 320); /* at the deadline, on fresh leases */
    assert_int_equal(repl_drain_state(s->nodes[1].r), REPL_DRAIN_NONE);
    assert_int_equal(s->cfg.version, version);
    write_acked(s, 10);
}

/* The primary cannot drain in time (a secondary, paused for 100 ms, holds
 * the commit index back): the manager gives up before its deadline and
 * tells it to resume; no configuration is written, and the primary serves
 * again as soon as both secondaries answer it. */
static void drain_that_cannot_finish_in_time_is_called_off(void **state)
{
    fixture *f = *state;
    sim *s = boot3(f, NULL);
    write_acked(s, 10);
    uint64_t version = s->cfg.version;
    sim_pause(s, 3);
    assert_true(sim_write(s) != 0);
    sim_tick(s);
    int64_t t0 = s->now;
    assert_true(sim_switchover(s, 2, 60, false));
    sim_run(s, 20);
    assert_int_equal(repl_drain_state(s->nodes[1].r), REPL_DRAIN_DRAINING);
    sim_run(s, 50);
    assert_int_equal(s->switch_aborts, 1); /* at 55 ms, the deadline less the margin */
    assert_int_equal(repl_drain_state(s->nodes[1].r), REPL_DRAIN_NONE);
    assert_int_equal(sim_server(s), 0); /* no fresh lease from node 3 yet */
    sim_run(s, 30);
    sim_resume(s, 3);
    assert_true(sim_until(s, node1_serves, 50));
    assert_true(s->now - t0 < 120);
    assert_int_equal(s->switchovers, 0);
    assert_int_equal(s->cfg.version, version);
    write_acked(s, 10);
}

static repl_msg from1(enum repl_msg_type t, uint64_t version, int64_t sent_at, uint32_t flags)
{
    return (repl_msg){.type = t, .shard = 7, .version = version, .from = 1, .to = 2,
                      .sent_at = sent_at, .flags = flags};
}

/* A primary's fence, from its side: it serves nothing, marks what it sends,
 * and once it resumes counts only answers to messages sent after that. */
static void fenced_primary_serves_nothing_and_resumes_on_fresh_leases(void **state)
{
    (void)state;
    capture cap = {.versions = {0}};
    repl_t *r = cap_repl(1, &cap);
    repl_config c = {.shard = 7, .version = 3, .primary = 1, .secondaries = {2}, .nsec = 1};
    repl_set_config(r, &c, 600); /* first configuration: serves from 1000 at the earliest */
    repl_tick(r, 1000);         /* a SYNC beacon */
    repl_msg m = {.type = REPL_SYNC_REPLY, .shard = 7, .version = 3, .from = 2, .to = 1,
                  .sent_at = 1000};
    repl_recv(r, &m, 1001);
    assert_true(repl_can_serve(r, 1001));
    assert_false(repl_drain_start(r, 2, 1500, 1002)); /* not its version */
    assert_true(repl_drain_start(r, 3, 1500, 1002));
    assert_false(repl_can_serve(r, 1002));
    assert_int_equal(cap.last_type, REPL_APPEND); /* a beacon, at once */
    assert_true(cap.last_flags & REPL_F_FENCED);
    assert_int_equal(repl_drain_state(r), REPL_DRAIN_DRAINED); /* nothing to commit */
    m = (repl_msg){.type = REPL_ACK, .shard = 7, .version = 3, .from = 2, .to = 1,
                   .sent_at = 1002};
    repl_recv(r, &m, 1003);
    assert_false(repl_can_serve(r, 1003));
    repl_tick(r, 1499);
    assert_true(cap.last_flags & REPL_F_FENCED);
    repl_tick(r, 1500); /* the deadline: unfenced, a beacon due in 1 ms */
    assert_int_equal(repl_drain_state(r), REPL_DRAIN_NONE);
    m.sent_at = 1499; /* answers the last fenced beacon */
    repl_recv(r, &m, 1500);
    assert_false(repl_can_serve(r, 1500));
    repl_tick(r, 1501);
    assert_int_equal(cap.last_type, REPL_APPEND);
    assert_false(cap.last_flags & REPL_F_FENCED);
    assert_int_equal(cap.last_sent_at, 1501);
    m.sent_at = 1501;
    repl_recv(r, &m, 1502);
    assert_true(repl_can_serve(r, 1502));
    /* repl_drain_stop ends a drain early the same way. */
    assert_true(repl_drain_start(r, 3, 5000, 1600));
    assert_false(repl_can_serve(r, 1601));
    repl_drain_stop(r, 1602);
    assert_int_equal(repl_drain_state(r), REPL_DRAIN_NONE);
    assert_false(repl_can_serve(r, 1602));
    repl_destroy(r);
}

/* The granting side: a fenced message voids the leases a replica granted
 * for messages sent up to it — so, made primary, it serves as soon as
 * every secondary has answered it — but not those for messages sent later
 * (the old primary resumed, or messages crossed). */
static void fenced_message_voids_the_leases_granted_for_earlier_ones(void **state)
{
    (void)state;
    for (int variant = 0; variant < 3; variant++) {
        capture cap = {.versions = {0}};
        repl_t *r = cap_repl(2, &cap);
        repl_config c = {.shard = 7, .version = 5, .primary = 1, .secondaries = {2}, .nsec = 1};
        repl_set_config(r, &c, 1000);
        repl_msg m = from1(REPL_APPEND, 5, 1500, 0);
        repl_recv(r, &m, 1500);
        assert_int_equal(cap.last_type, REPL_ACK); /* answered: a lease until 1900 */
        if (variant == 0) {
            m = from1(REPL_APPEND, 5, 1510, REPL_F_FENCED);
            repl_recv(r, &m, 1510);
        } else if (variant == 1) { /* fenced, then resumed */
            m = from1(REPL_APPEND, 5, 1510, REPL_F_FENCED);
            repl_recv(r, &m, 1510);
            m = from1(REPL_APPEND, 5, 1520, 0);
            repl_recv(r, &m, 1520); /* a lease until 1920 */
        } else { /* a later message answered before an older fenced one arrived */
            m = from1(REPL_APPEND, 5, 1530, 0);
            repl_recv(r, &m, 1530);
            m = from1(REPL_APPEND, 5, 1510, REPL_F_FENCED);
            repl_recv(r, &m, 1531);
        }
        c = (repl_config){.shard = 7, .version = 6, .primary = 2, .secondaries = {1}, .nsec = 1};
        repl_set_config(r, &c, 1600);
        m = (repl_msg){.type = REPL_SYNC_REPLY, .shard = 7, .version = 6, .from = 1, .to = 2,
                       .sent_at = 1600};
        repl_recv(r, &m, 1601);
        if (variant == 0) {
            assert_true(repl_can_serve(r, 1601));
        } else {
            int64_t until = variant == 1 ? 1920 : 1930;
            assert_false(repl_can_serve(r, until - 1));
            m.sent_at = until - 1;
            repl_recv(r, &m, until - 1);
            assert_true(repl_can_serve(r, until));
        }
        repl_destroy(r);
    }
}

/* ---- large entries (repl.h, "Large entries") ---- */

#define BIG (40u << 20) /* a 40 MB entry: 2,097 ms at REPL_SLOW_BYTES_PER_MS */

/* Primary 1 of version 1 with secondary 2, serving from 1002 on a lease
 * until 1401; entry 1 (BIG bytes) logged, durable and sent at 1010. */
static repl_t *big_primary(capture *cap)
{
    cap->versions[1] = 1;
    cap->len = BIG;
    repl_t *r = cap_repl(1, cap);
    repl_config c = {.shard = 7, .version = 1, .primary = 1, .secondaries = {2}, .nsec = 1};
    repl_set_config(r, &c, 600);
    repl_tick(r, 1000); /* SYNC (and a removal request: no answer yet) */
    repl_msg m = cap_reply(REPL_SYNC_REPLY, 2, 1000, 0);
    repl_recv(r, &m, 1001); /* streaming from 1: a beacon */
    m = cap_reply(REPL_ACK, 2, cap->last_sent_at, 0);
    repl_recv(r, &m, 1002);
    assert_true(repl_can_serve(r, 1002));
    cap->with_entries = cap->removes = 0;
    repl_local_append(r, 1, 1010);
    repl_local_durable(r, 1, 1010);
    assert_int_equal(cap->with_entries, 1);
    return r;
}

/* The secondary reads the entry for 1,600 ms (reporting progress every
 * 50 ms), applies it silently for 300 ms, then answers.  Meanwhile the
 * primary holds no lease and serves nothing (4), but asks for no removal
 * and sends the entry only once; the answer commits it and the next beacon
 * answered restores serving. */
static void large_entry_in_transit_does_not_remove_a_progressing_secondary(void **state)
{
    (void)state;
    capture cap = {0};
    repl_t *r = big_primary(&cap);
    int64_t arrived = 1010 + 1600, acked = arrived + 300;
    for (int64_t t = 1011; t < acked; t++) {
        cap.now = t;
        if (t <= arrived && t % 50 == 0) {
            repl_msg m = cap_reply(REPL_PROGRESS, 2, t, 0);
            m.commit = (uint64_t)BIG * (uint64_t)(t - 1010) / 1600;
            repl_recv(r, &m, t);
        }
        repl_tick(r, t);
        if (t > 1401) assert_false(repl_can_serve(r, t));
    }
    assert_int_equal(cap.removes, 0);
    assert_int_equal(cap.with_entries, 1); /* no retransmission of 40 MB */
    assert_int_equal(repl_commit(r), 0);
    repl_msg m = cap_reply(REPL_ACK, 2, 1010, 1);
    repl_recv(r, &m, acked);
    assert_int_equal(repl_commit(r), 1);
    assert_false(repl_can_serve(r, acked)); /* a lease from 1010: long gone */
    m = cap_reply(REPL_ACK, 2, acked - 20, 1); /* a beacon queued behind it */
    repl_recv(r, &m, acked + 1);
    assert_true(repl_can_serve(r, acked + 1));
    repl_destroy(r);
}

/* A secondary that stops making progress is still reported: at its lease's
 * end if it never reported any; else lease_ms + the time to apply what it
 * had reported after its last PROGRESS (here 8 MB: 419 ms). */
static void large_entry_secondary_that_stops_progressing_is_removed(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        capture cap = {0};
        repl_t *r = big_primary(&cap);
        int64_t last = variant ? 1300 : 0;
        uint64_t had = 8u << 20;
        for (int64_t t = 1011; t < 4000 && !cap.removes; t++) {
            cap.now = t;
            if (t <= last && t % 50 == 0) {
                repl_msg m = cap_reply(REPL_PROGRESS, 2, t, 0);
                m.commit = had;
                repl_recv(r, &m, t);
            }
            repl_tick(r, t);
            assert_false(t > 1401 && repl_can_serve(r, t));
        }
        assert_int_equal(cap.removes, 1);
        assert_int_equal(cap.last_victim, 2);
        int64_t due = variant ? last + 400 + (int64_t)(had / REPL_SLOW_BYTES_PER_MS) : 1401;
        assert_true(cap.first_remove_at >= due && cap.first_remove_at <= due + 1);
        repl_destroy(r);
    }
}

/* The secondary's side: a large message from its primary still arriving
 * counts as hearing from it (no request to remove it past grace_ms), and
 * the primary is told at most every beacon_ms / 2; the same from another
 * node, or of another version, counts for nothing.  Once the bytes stop,
 * the primary is reported grace_ms later as usual. */
static void large_message_arriving_keeps_the_secondary_from_removing_its_primary(void **state)
{
    (void)state;
    capture cap = {0};
    repl_t *r = cap_repl(2, &cap);
    repl_config c = {.shard = 7, .version = 1, .primary = 1, .secondaries = {2}, .nsec = 1};
    repl_set_config(r, &c, 1000);
    repl_msg m = from1(REPL_APPEND, 1, 1000, 0);
    repl_recv(r, &m, 1000);
    assert_int_equal(cap.last_type, REPL_ACK);
    repl_stream_progress(r, 3, 1, 100, 1001); /* not the primary */
    repl_stream_progress(r, 1, 0, 100, 1001); /* not this version */
    assert_int_equal(cap.progress_sent, 0);
    int64_t stop = 1000 + 3 * 800;
    for (int64_t t = 1002; t < stop + 800 + 5 && !cap.removes; t++) {
        cap.now = t;
        if (t < stop && t % 10 == 0) repl_stream_progress(r, 1, 1, (uint64_t)t * 1000, t);
        repl_tick(r, t);
    }
    int64_t last = stop - 10; /* the last progress */
    assert_int_equal(cap.removes, 1);
    assert_int_equal(cap.last_victim, 1);
    assert_int_equal(cap.first_remove_at, last + 800);
    assert_true(cap.progress_sent >= 40 && cap.progress_sent <= 50); /* every 50 ms */
    repl_destroy(r);
}

/* ---- random faults ---- */

typedef struct cutrec {
    uint64_t a, b;
    int64_t until;
} cutrec;

static void random_run(uint64_t seed)
{
    repl_params par = {.lease_ms = 40, .grace_ms = 80, .beacon_ms = 10, .max_batch = 16,
                       .max_inflight = 8};
    size_t n = 3 + (size_t)(seed % 3);
    sim *s = sim_create(n, seed, &par);
    /* Links from fast to slow next to the lease (40 ms), disks from
     * instant to slow, snapshots from quick to longer than a lease. */
    static const int64_t dmaxes[] = {2, 4, 4, 8, 15}, disks[] = {0, 2, 2, 5, 12},
                         snaps[] = {5, 10, 30, 60};
    s->dmax = dmaxes[(seed / 3) % 5];
    s->disk_delay = disks[(seed / 7) % 5];
    s->snap_delay = snaps[(seed / 11) % 4];
    s->push_every = 50;
    s->auto_learn = true;
    /* Knobs to see what each safeguard prevents (not for the suite). */
    s->no_floor = getenv("REPL_NO_FLOOR") != NULL;
    s->no_bump = getenv("REPL_NO_BUMP") != NULL;
    s->pick_best = seed % 2 == 0; /* both ways of choosing a new primary */
    bool safety_only = getenv("REPL_SAFETY_ONLY") != NULL;
    uint64_t secs[4] = {2, 3, 0, 0};
    if (n == 5) secs[2] = 4; /* else the last node is a spare */
    sim_bootstrap(s, 1, secs, NULL);

    cutrec cuts[4];
    size_t ncuts = 0;
    int64_t drop_until = 0;
    const char *rate = getenv("REPL_FAULT_RATE"), *maxf = getenv("REPL_MAX_FAULTS");
    /* Per seed: calm, busy or stormy (faults per million ms, at most so
     * many at once). */
    static const unsigned rates[] = {12000, 30000, 50000};
    static const size_t maxes[] = {2, 3, 4};
    unsigned fault_rate = rate ? (unsigned)atoi(rate) : rates[seed % 3];
    size_t max_faults = maxf ? (size_t)atoi(maxf) : maxes[seed % 3];
    int64_t ticks = getenv("REPL_TICKS") ? atoll(getenv("REPL_TICKS")) : 5000;
    for (int64_t t = 0; t < ticks; t++) {
        /* end faults that are over */
        for (uint64_t i = 1; i <= n; i++) {
            sim_node *nd = &s->nodes[i];
            if (!nd->fault || s->now < nd->fault_until) continue;
            if (nd->fault == 1) sim_restart(s, i);
            else sim_resume(s, i);
            nd->fault = 0;
        }
        for (size_t k = 0; k < ncuts;)
            if (s->now >= cuts[k].until) {
                sim_partition(s, cuts[k].a, cuts[k].b, false);
                cuts[k] = cuts[--ncuts];
            } else {
                k++;
            }
        if (drop_until && s->now >= drop_until) s->drop_pm = 0, drop_until = 0;
        /* start new ones, a few at a time */
        size_t active = ncuts + (drop_until != 0);
        for (uint64_t i = 1; i <= n; i++) active += s->nodes[i].fault != 0;
        if (active < max_faults && sim_chance(s, fault_rate)) {
            uint64_t kind = sim_rand(s) % 100;
            uint64_t v = 1 + sim_rand(s) % n;
            sim_node *nd = &s->nodes[v];
            if (kind < 20) {
                if (!nd->fault) {
                    sim_crash(s, v);
                    nd->fault = 1;
                    nd->fault_until = s->now + sim_between(s, 30, 400);
                }
            } else if (kind < 50) {
                if (!nd->fault) {
                    sim_pause(s, v);
                    nd->fault = 2;
                    nd->fault_until = s->now + sim_between(s, 10, 250);
                }
            } else if (kind < 85) {
                uint64_t w = sim_rand(s) % (n + 1); /* 0: the manager */
                if (w != v && ncuts < 4 && !s->cut[v][w]) {
                    sim_partition(s, v, w, true);
                    cuts[ncuts++] = (cutrec){v, w, s->now + sim_between(s, 10, 400)};
                }
            } else if (!drop_until) {
                s->drop_pm = (unsigned)sim_between(s, 20, 200);
                drop_until = s->now + sim_between(s, 10, 300);
            }
        }
        /* Now and then a switchover to a random secondary, with a drain
         * window from shorter than a link delay to several leases; one in
         * four times the manager dies once it has sent DRAIN. */
        if (sim_chance(s, 4000) && s->cfg.nsec) {
            uint64_t target = s->cfg.secondaries[sim_rand(s) % s->cfg.nsec];
            sim_switchover(s, target, sim_between(s, 5, 200), sim_rand(s) % 4 == 0);
        }
        if (sim_chance(s, 400000)) sim_write(s);
        sim_tick(s);
    }

    /* Quiet: everything heals; the group must serve again and converge. */
    for (uint64_t i = 1; i <= n; i++) {
        sim_node *nd = &s->nodes[i];
        if (nd->fault == 1) sim_restart(s, i);
        else if (nd->fault == 2) sim_resume(s, i);
        nd->fault = 0;
    }
    sim_heal(s);
    uint64_t before = s->nacked;
    for (int64_t t = 0; t < 800; t++) {
        if (sim_chance(s, 300000)) sim_write(s);
        sim_tick(s);
    }
    sim_run(s, 700);
    if (safety_only) {
        sim_destroy(s);
        return;
    }
    SIM_ASSERT(sim_has_server(s), "no primary serves after the faults healed");
    SIM_ASSERT(s->nacked > before, "no write was acknowledged after the faults healed");
    SIM_ASSERT(s->npend == 0, "%zu writes still pending", s->npend);
    if (getenv("REPL_VERBOSE"))
        fprintf(stderr,
                "seed %llu: %zu nodes, version %llu (cas %llu ok, %llu failed), %llu acked, "
                "%llu switchovers (%llu aborted), %llu snapshots, final log %zu\n",
                (unsigned long long)seed, n, (unsigned long long)s->cfg.version,
                (unsigned long long)s->cas_ok, (unsigned long long)s->cas_failed,
                (unsigned long long)s->nacked, (unsigned long long)s->switchovers,
                (unsigned long long)s->switch_aborts,
                (unsigned long long)(s->nodes[1].snapshots_sent + s->nodes[2].snapshots_sent +
                                     s->nodes[3].snapshots_sent + s->nodes[4].snapshots_sent +
                                     s->nodes[5].snapshots_sent),
                s->nodes[s->cfg.primary].nlog);
    sim_node *p = &s->nodes[s->cfg.primary];
    SIM_ASSERT(repl_commit(p->r) == p->nlog, "primary %llu: commit %llu of %zu",
               (unsigned long long)p->id, (unsigned long long)repl_commit(p->r), p->nlog);
    for (uint64_t i = 1; i <= n; i++) {
        if (!sim_is_member(s, i)) continue;
        sim_node *nd = &s->nodes[i];
        SIM_ASSERT(repl_config_get(nd->r)->version == s->cfg.version,
                   "member %llu is at version %llu, not %llu", (unsigned long long)i,
                   (unsigned long long)repl_config_get(nd->r)->version,
                   (unsigned long long)s->cfg.version);
        SIM_ASSERT(nd->nlog == p->nlog, "member %llu has %zu entries, the primary %zu",
                   (unsigned long long)i, nd->nlog, p->nlog);
        for (uint64_t l = 1; l <= nd->nlog; l++)
            SIM_ASSERT(nd->log[l - 1].payload == p->log[l - 1].payload &&
                           nd->log[l - 1].version == p->log[l - 1].version,
                       "member %llu differs from the primary at LSN %llu", (unsigned long long)i,
                       (unsigned long long)l);
    }
    sim_destroy(s);
}

static void random_faults_many_seeds(void **state)
{
    (void)state;
    const char *one = getenv("REPL_SEED"), *count = getenv("REPL_SEEDS");
    if (one) {
        random_run(strtoull(one, NULL, 10));
        return;
    }
    uint64_t seeds = count ? strtoull(count, NULL, 10) : 200;
    for (uint64_t seed = 1; seed <= seeds; seed++) random_run(seed);
    print_message("random faults: %llu seeds x 6500 simulated ms\n", (unsigned long long)seeds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(steady_replication_1000_writes_commit_after_all_acks,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(secondary_crash_is_removed_and_writes_continue, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(primary_crash_promotes_a_secondary, setup, teardown),
        cmocka_unit_test_setup_teardown(
            paused_primary_loses_its_lease_and_rejoins_without_serving, setup, teardown),
        cmocka_unit_test_setup_teardown(stale_message_from_an_old_version_is_rejected, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            partition_isolating_the_primary_elects_another_after_it_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(two_replicas_asking_promotion_at_once_one_config_wins,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(returning_replica_with_divergent_suffix_gets_a_snapshot,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            returning_replica_with_a_prefix_streams_from_its_next_lsn, setup, teardown),
        cmocka_unit_test_setup_teardown(
            returning_replica_behind_a_compacted_log_gets_a_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(learner_catches_up_and_is_promoted, setup, teardown),
        cmocka_unit_test_setup_teardown(lossy_network_loses_no_acknowledged_write, setup,
                                        teardown),
        cmocka_unit_test(restarted_primary_does_not_reuse_its_version),
        cmocka_unit_test(restarted_secondary_does_not_take_back_its_refusal),
        cmocka_unit_test(learner_is_promoted_only_once_it_holds_what_predecessors_committed),
        cmocka_unit_test(older_snapshot_cannot_undo_a_newer_one),
        cmocka_unit_test(learner_whose_promotion_is_asked_counts_like_a_secondary),
        cmocka_unit_test_setup_teardown(new_primary_waits_out_the_lease_it_granted, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            switchover_drains_then_hands_over_without_waiting_out_the_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(switchover_back_and_forth_under_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(drain_without_a_manager_resumes_at_its_deadline, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(drain_that_cannot_finish_in_time_is_called_off, setup,
                                        teardown),
        cmocka_unit_test(fenced_primary_serves_nothing_and_resumes_on_fresh_leases),
        cmocka_unit_test(fenced_message_voids_the_leases_granted_for_earlier_ones),
        cmocka_unit_test(large_entry_in_transit_does_not_remove_a_progressing_secondary),
        cmocka_unit_test(large_entry_secondary_that_stops_progressing_is_removed),
        cmocka_unit_test(large_message_arriving_keeps_the_secondary_from_removing_its_primary),
        cmocka_unit_test(random_faults_many_seeds),
    };
    return cmocka_run_group_tests_name("repl", tests, NULL, NULL);
}
