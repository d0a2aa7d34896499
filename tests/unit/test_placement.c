/*
 * test_placement.c — the manager's decisions (src/manager/placement.c).
 *
 * Covers every branch of: REMOVE (stale and newer versions, the primary
 * dropping a secondary or learner, a secondary replacing the primary —
 * invariant 5 — two secondaries asking at once, every refusal), PROMOTE,
 * SHARD-CREATE (zone spreading, fallback when zones repeat, nodes without a
 * zone, stale and member nodes skipped, not enough spares, bounds, shard
 * numbering), SWITCHOVER (named and automatic target, every target check),
 * the periodic repair (dead learner dropped, spare added as a learner in
 * a new zone, learners counting toward replicas), and a restarted lone
 * primary getting a new version.
 *
 * The fixture is a small registry: nodes 1..8 in zones a, a, b, b, c, c,
 * "", "" — all heartbeating at t = 10000 unless a case changes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "manager/placement.h"

#define NOW 10000

typedef struct fx {
    pl_node nodes[16];
    size_t nnodes;
    pl_shard shards[8];
    size_t nshards;
    pl_shard out;
    char err[512];
} fx;

static int setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    static const char *zones[] = {"a", "a", "b", "b", "c", "c", "", ""};
    for (size_t i = 0; i < 8; i++)
        f->nodes[f->nnodes++] = (pl_node){.id = i + 1, .zone = zones[i], .weight = 1,
                                          .seen = true, .last_seen = NOW, .last_lsn = 100};
    memset(&f->out, 0xAB, sizeof(f->out)); /* untouched-output witness */
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    test_free(*state);
    return 0;
}

static pl_view view(fx *f)
{
    return (pl_view){f->shards, f->nshards, f->nodes, f->nnodes, NOW};
}

/* A shard: ids of secondaries and learners end at 0. */
static pl_shard mk(uint32_t n, uint64_t version, uint32_t replicas, uint64_t primary,
                   const uint64_t *secs, const uint64_t *learners)
{
    pl_shard s;
    memset(&s, 0, sizeof(s));
    s.cfg.shard = n;
    s.cfg.version = version;
    s.replicas = replicas;
    s.cfg.primary = primary;
    for (; secs && *secs; secs++) s.cfg.secondaries[s.cfg.nsec++] = *secs;
    for (; learners && *learners; learners++) s.cfg.learners[s.cfg.nlearn++] = *learners;
    return s;
}

static pl_shard *add_shard(fx *f, pl_shard s)
{
    f->shards[f->nshards] = s;
    return &f->shards[f->nshards++];
}

static void assert_ids(const uint64_t *got, size_t n, const uint64_t *want)
{
    size_t k = 0;
    for (; want[k]; k++) {
        assert_true(k < n);
        assert_int_equal(got[k], want[k]);
    }
    assert_int_equal(n, k);
}

#define IDS(...) ((const uint64_t[]){__VA_ARGS__, 0})
#define NONE ((const uint64_t[]){0})

/* ---- REMOVE ------------------------------------------------------------- */

static void remove_stale_version_returns_current(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 3, 1, IDS(3, 5), NONE);
    assert_int_equal(pl_remove(&cur, 4, 3, 1, &f->out, f->err, sizeof(f->err)), PL_CURRENT);
    assert_int_equal(pl_remove(&cur, 1, 1, 3, &f->out, f->err, sizeof(f->err)), PL_CURRENT);
}

static void remove_newer_version_refused(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 3, 1, IDS(3, 5), NONE);
    assert_int_equal(pl_remove(&cur, 6, 3, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "version 5, not 6"));
}

static void remove_secondary_by_primary(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 3, 1, IDS(3, 5), NONE);
    assert_int_equal(pl_remove(&cur, 5, 3, 1, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 6);
    assert_int_equal(f->out.cfg.primary, 1);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(5));
    assert_int_equal(f->out.replicas, 3);
}

static void remove_learner_by_primary(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 3, 1, IDS(3), IDS(5));
    assert_int_equal(pl_remove(&cur, 5, 5, 1, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 6);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3));
    assert_int_equal(f->out.cfg.nlearn, 0);
}

static void remove_primary_by_secondary_promotes_requester(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 4, 1, IDS(3, 5, 7), IDS(2));
    assert_int_equal(pl_remove(&cur, 5, 1, 5, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 6);
    assert_int_equal(f->out.cfg.primary, 5); /* invariant 5: a secondary of v5 */
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3, 7));
    assert_ids(f->out.cfg.learners, f->out.cfg.nlearn, IDS(2)); /* learners stay learners */
}

static void remove_two_secondaries_asking_at_once_one_wins(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 3, 1, IDS(3, 5), NONE);
    /* Both lost the primary's beacons and ask with version 5. */
    assert_int_equal(pl_remove(&cur, 5, 1, 3, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    pl_shard after = f->out;
    assert_int_equal(after.cfg.primary, 3);
    assert_ids(after.cfg.secondaries, after.cfg.nsec, IDS(5));
    /* The second request still names version 5: it gets version 6 back. */
    assert_int_equal(pl_remove(&after, 5, 1, 5, &f->out, f->err, sizeof(f->err)), PL_CURRENT);
}

static void remove_refusals(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 5, 4, 1, IDS(3, 5), IDS(7));
    pl_shard before = f->out;
    static const struct {
        uint64_t victim, requester;
        const char *msg;
    } cases[] = {
        {1, 7, "a learner (0000000000000007) cannot ask"},      /* learner deposing primary */
        {3, 7, "a learner"},                                    /* learner removing secondary */
        {5, 3, "only the primary may remove a secondary"},      /* secondary vs secondary */
        {7, 3, "is a learner"},                                 /* secondary vs learner */
        {3, 3, "cannot ask for its own removal"},               /* self */
        {3, 8, "requester 0000000000000008 is not a member"},   /* stranger asking */
        {8, 1, "victim 0000000000000008 is not a member"},      /* stranger victim */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->err[0] = '\0';
        assert_int_equal(pl_remove(&cur, 5, cases[i].victim, cases[i].requester, &f->out, f->err,
                                   sizeof(f->err)),
                         PL_REFUSED);
        if (!strstr(f->err, cases[i].msg)) fail_msg("case %zu: '%s'", i, f->err);
        assert_memory_equal(&f->out, &before, sizeof(before));
    }
}

/* ---- PROMOTE ------------------------------------------------------------ */

static void promote_learner_by_primary(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 7, 3, 1, IDS(3), IDS(5));
    assert_int_equal(pl_promote(&cur, 7, 5, 1, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 8);
    assert_int_equal(f->out.cfg.primary, 1);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3, 5));
    assert_int_equal(f->out.cfg.nlearn, 0);
}

static void promote_stale_version_returns_current(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 7, 3, 1, IDS(3), IDS(5));
    assert_int_equal(pl_promote(&cur, 6, 5, 1, &f->out, f->err, sizeof(f->err)), PL_CURRENT);
    assert_int_equal(pl_promote(&cur, 8, 5, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
}

static void promote_refusals(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 7, 3, 1, IDS(3), IDS(5));
    assert_int_equal(pl_promote(&cur, 7, 5, 3, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "only the primary"));
    assert_int_equal(pl_promote(&cur, 7, 3, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "is not a learner"));
    assert_int_equal(pl_promote(&cur, 7, 8, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    pl_shard full = mk(1, 7, 8, 9, IDS(1, 2, 3, 4, 5, 6, 7, 8), IDS(10));
    assert_int_equal(pl_promote(&full, 7, 10, 9, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "already has 8 secondaries"));
}

/* ---- SHARD-CREATE ------------------------------------------------------- */

static void create_spreads_over_distinct_zones(void **state)
{
    fx *f = *state;
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 3, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.shard, 1);
    assert_int_equal(f->out.cfg.version, 1);
    assert_int_equal(f->out.replicas, 3);
    /* lowest id in each new zone: 1 (a), 3 (b), 5 (c); the first is primary */
    assert_int_equal(f->out.cfg.primary, 1);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3, 5));
    assert_int_equal(f->out.cfg.nlearn, 0);
}

static void create_falls_back_to_shared_zones(void **state)
{
    fx *f = *state;
    /* only zones a and b are left for 4 replicas: 1 (a), 3 (b), then
     * zoneless 7 and 8 count as new zones, before a second a or b */
    f->nodes[4].seen = f->nodes[5].seen = false;
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 5, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.primary, 1);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3, 7, 8, 2));
}

static void create_skips_stale_and_member_nodes(void **state)
{
    fx *f = *state;
    add_shard(f, mk(4, 2, 2, 1, IDS(3), NONE));
    f->nodes[4].last_seen = NOW - PL_SPARE_FRESH_MS - 1; /* node 5: too old to be a spare */
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 3, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.shard, 5); /* largest + 1 */
    /* spares 2 (a), 4 (b), 6 (c), 7, 8: one per zone, lowest ids */
    assert_int_equal(f->out.cfg.primary, 2);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(4, 6));
}

static void create_not_enough_spares(void **state)
{
    fx *f = *state;
    add_shard(f, mk(1, 1, 3, 1, IDS(2, 3), NONE));
    add_shard(f, mk(2, 1, 3, 4, IDS(5, 6), NONE));
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 3, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_string_equal(f->err, "not enough spare nodes: need 3, have 2");
    assert_int_equal(pl_create(&v, 2, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.shard, 3);
}

static void create_unseen_nodes_are_not_spares(void **state)
{
    fx *f = *state;
    for (size_t i = 0; i < f->nnodes; i++) f->nodes[i].seen = false;
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_string_equal(f->err, "not enough spare nodes: need 1, have 0");
}

static void create_replicas_bounds(void **state)
{
    fx *f = *state;
    pl_view v = view(f);
    assert_int_equal(pl_create(&v, 0, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "between 1 and 8"));
    assert_int_equal(pl_create(&v, REPL_MAX_MEMBERS + 1, &f->out, f->err, sizeof(f->err)),
                     PL_REFUSED);
    assert_int_equal(pl_create(&v, 1, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.nsec, 0);
    assert_int_equal(pl_create(&v, 8, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.nsec, 7);
    assert_true(pl_shard_valid(&f->out));
}

/* ---- SWITCHOVER --------------------------------------------------------- */

/* Every member of a group restarted (reports version 0): the next version,
 * with the longest log as primary; nothing while one is silent or still in
 * a configuration. */
static void all_restarted_reissues_with_longest_log_primary(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 7, 3, 1, IDS(2, 3), NULL));
    for (size_t i = 0; i < 3; i++) f->nodes[i].floor = 7; /* restarted after version 7 */
    f->nodes[0].last_lsn = 50;
    f->nodes[1].last_lsn = 90; /* node 2 holds the longest log */
    f->nodes[2].last_lsn = 70;
    pl_view v = view(f);
    assert_int_equal(pl_all_restarted(&v, cur, &f->out), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 8);
    assert_int_equal(f->out.cfg.primary, 2);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(1, 3));
}

static void all_restarted_waits_for_every_member(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 7, 3, 1, IDS(2, 3), NULL));
    for (size_t i = 0; i < 3; i++) f->nodes[i].floor = 7;
    f->nodes[2].reported_version = 7; /* still acting at version 7 */
    pl_view v = view(f);
    assert_int_equal(pl_all_restarted(&v, cur, &f->out), PL_NOCHANGE);
    f->nodes[2].reported_version = 0;
    f->nodes[2].floor = 0; /* new, never in a configuration: not restarted */
    v = view(f);
    assert_int_equal(pl_all_restarted(&v, cur, &f->out), PL_NOCHANGE);
    f->nodes[2].floor = 7;
    f->nodes[2].reported_version = 0;
    f->nodes[2].last_seen = NOW - 5000; /* silent */
    v = view(f);
    assert_int_equal(pl_all_restarted(&v, cur, &f->out), PL_NOCHANGE);
}

static void switchover_to_named_secondary(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 3, 4, 1, IDS(3, 5), IDS(7)));
    pl_view v = view(f);
    assert_int_equal(pl_switchover(&v, cur, 5, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 4);
    assert_int_equal(f->out.cfg.primary, 5);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(1, 3)); /* old primary first */
    assert_ids(f->out.cfg.learners, f->out.cfg.nlearn, IDS(7));
}

static void switchover_auto_picks_most_caught_up_healthy(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 3, 4, 1, IDS(3, 5, 6), NONE));
    f->nodes[2].last_lsn = 90;  /* 3 */
    f->nodes[4].last_lsn = 120; /* 5: most caught up but silent */
    f->nodes[4].last_seen = NOW - PL_UNHEALTHY_MS - 1;
    f->nodes[5].last_lsn = 110; /* 6 */
    pl_view v = view(f);
    assert_int_equal(pl_switchover(&v, cur, 0, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.primary, 6);
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(1, 3, 5));
}

static void switchover_auto_ties_pick_first_listed(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 3, 3, 1, IDS(5, 3), NONE));
    pl_view v = view(f);
    assert_int_equal(pl_switchover(&v, cur, 0, &f->out, f->err, sizeof(f->err)), PL_CHANGED);
    assert_int_equal(f->out.cfg.primary, 5);
}

static void switchover_target_checks(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 3, 4, 1, IDS(3, 5), IDS(7)));
    f->nodes[4].last_seen = NOW - PL_UNHEALTHY_MS - 1; /* 5 is silent */
    pl_view v = view(f);
    assert_int_equal(pl_switchover(&v, cur, 1, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "already the primary"));
    assert_int_equal(pl_switchover(&v, cur, 7, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "is a learner"));
    assert_int_equal(pl_switchover(&v, cur, 8, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "is not a secondary"));
    assert_int_equal(pl_switchover(&v, cur, 5, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "not healthy"));
}

static void switchover_without_healthy_secondary(void **state)
{
    fx *f = *state;
    pl_shard *solo = add_shard(f, mk(1, 3, 1, 1, NONE, NONE));
    pl_view v = view(f);
    assert_int_equal(pl_switchover(&v, solo, 0, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
    assert_non_null(strstr(f->err, "no healthy secondary"));
    pl_shard *two = add_shard(f, mk(2, 3, 2, 2, IDS(4), NONE));
    f->nodes[3].seen = false;
    v = view(f);
    assert_int_equal(pl_switchover(&v, two, 0, &f->out, f->err, sizeof(f->err)), PL_REFUSED);
}

/* ---- repair ------------------------------------------------------------- */

static void repair_adds_spare_learner_in_new_zone(void **state)
{
    fx *f = *state;
    /* members 1 (a), 3 (b): the spare from zone c (5) is preferred to 2 */
    pl_shard *cur = add_shard(f, mk(1, 4, 3, 1, IDS(3), NONE));
    pl_view v = view(f);
    char why[256];
    assert_int_equal(pl_repair(&v, cur, &f->out, why, sizeof(why)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 5);
    assert_ids(f->out.cfg.learners, f->out.cfg.nlearn, IDS(5));
    assert_ids(f->out.cfg.secondaries, f->out.cfg.nsec, IDS(3));
    assert_non_null(strstr(why, "added as a learner"));
}

static void repair_learners_count_toward_replicas(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 4, 3, 1, IDS(3), IDS(5)));
    pl_view v = view(f);
    assert_int_equal(pl_repair(&v, cur, &f->out, NULL, 0), PL_NOCHANGE);
    pl_shard *full = add_shard(f, mk(2, 1, 2, 2, IDS(4), NONE));
    v = view(f);
    assert_int_equal(pl_repair(&v, full, &f->out, NULL, 0), PL_NOCHANGE);
}

static void repair_without_spare_does_nothing(void **state)
{
    fx *f = *state;
    add_shard(f, mk(2, 1, 3, 2, IDS(4, 6), NONE));
    pl_shard *cur = add_shard(f, mk(1, 4, 4, 1, IDS(3, 5), NONE));
    for (size_t i = 6; i < 8; i++) f->nodes[i].last_seen = NOW - PL_SPARE_FRESH_MS - 1;
    pl_view v = view(f);
    assert_int_equal(pl_repair(&v, cur, &f->out, NULL, 0), PL_NOCHANGE);
}

static void repair_drops_silent_learner(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 4, 4, 1, IDS(3), IDS(5, 7)));
    f->nodes[4].last_seen = NOW - PL_UNHEALTHY_MS;     /* 5: exactly 3 s: kept */
    f->nodes[6].last_seen = NOW - PL_UNHEALTHY_MS - 1; /* 7: over: dropped */
    pl_view v = view(f);
    char why[256];
    assert_int_equal(pl_repair(&v, cur, &f->out, why, sizeof(why)), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 5);
    assert_ids(f->out.cfg.learners, f->out.cfg.nlearn, IDS(5));
    assert_non_null(strstr(why, "silent"));
}

static void repair_drops_unregistered_learner(void **state)
{
    fx *f = *state;
    pl_shard *cur = add_shard(f, mk(1, 4, 3, 1, IDS(3), IDS(42)));
    pl_view v = view(f);
    char why[256];
    assert_int_equal(pl_repair(&v, cur, &f->out, why, sizeof(why)), PL_CHANGED);
    assert_int_equal(f->out.cfg.nlearn, 0);
    assert_non_null(strstr(why, "not registered"));
}

static void repair_never_touches_silent_secondaries(void **state)
{
    fx *f = *state;
    /* removal of a secondary is the replicas' decision (leases), not ours */
    pl_shard *cur = add_shard(f, mk(1, 4, 3, 1, IDS(3, 5), NONE));
    f->nodes[2].seen = false;
    f->nodes[2].last_seen = 0;
    pl_view v = view(f);
    assert_int_equal(pl_repair(&v, cur, &f->out, NULL, 0), PL_NOCHANGE);
}

/* ---- a restarted primary ------------------------------------------------ */

static void restarted_lone_primary_gets_new_version(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 4, 2, 1, NONE, IDS(3));
    assert_int_equal(pl_restarted(&cur, 1, 0, &f->out), PL_CHANGED);
    assert_int_equal(f->out.cfg.version, 5);
    assert_int_equal(f->out.cfg.primary, 1);
    assert_ids(f->out.cfg.learners, f->out.cfg.nlearn, IDS(3));
}

static void restarted_primary_with_secondaries_is_left_to_them(void **state)
{
    fx *f = *state;
    pl_shard cur = mk(1, 4, 2, 1, IDS(2), NONE);
    assert_int_equal(pl_restarted(&cur, 1, 0, &f->out), PL_NOCHANGE); /* they will REMOVE it */
    pl_shard solo = mk(1, 4, 1, 1, NONE, NONE);
    assert_int_equal(pl_restarted(&solo, 1, 4, &f->out), PL_NOCHANGE); /* has its config */
    assert_int_equal(pl_restarted(&solo, 3, 0, &f->out), PL_NOCHANGE); /* not the primary */
}

/* ---- helpers ------------------------------------------------------------ */

static void shard_valid_rejects_duplicates_and_empties(void **state)
{
    (void)state;
    pl_shard s = mk(1, 1, 3, 1, IDS(2, 3), NONE);
    assert_true(pl_shard_valid(&s));
    s = mk(1, 1, 3, 1, IDS(2, 1), NONE);
    assert_false(pl_shard_valid(&s));
    s = mk(1, 1, 3, 1, IDS(2), IDS(2));
    assert_false(pl_shard_valid(&s));
    s = mk(0, 1, 3, 1, NONE, NONE);
    assert_false(pl_shard_valid(&s));
    s = mk(1, 0, 3, 1, NONE, NONE);
    assert_false(pl_shard_valid(&s));
    s = mk(1, 1, 3, 0, NONE, NONE);
    assert_false(pl_shard_valid(&s));
    s = mk(1, 1, 0, 1, NONE, NONE);
    assert_false(pl_shard_valid(&s));
}

static void roles_and_names(void **state)
{
    fx *f = *state;
    add_shard(f, mk(3, 1, 3, 1, IDS(2), IDS(4)));
    pl_view v = view(f);
    assert_int_equal(pl_role(&f->shards[0].cfg, 1), REPL_PRIMARY);
    assert_int_equal(pl_role(&f->shards[0].cfg, 2), REPL_SECONDARY);
    assert_int_equal(pl_role(&f->shards[0].cfg, 4), REPL_LEARNER);
    assert_int_equal(pl_role(&f->shards[0].cfg, 5), REPL_NONE);
    assert_int_equal(pl_node_shard(&v, 4), 3);
    assert_int_equal(pl_node_shard(&v, 5), 0);
    assert_string_equal(pl_result_name(PL_CHANGED), "changed");
    assert_string_equal(pl_result_name(PL_REFUSED), "refused");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(remove_stale_version_returns_current),
        T(remove_newer_version_refused),
        T(remove_secondary_by_primary),
        T(remove_learner_by_primary),
        T(remove_primary_by_secondary_promotes_requester),
        T(remove_two_secondaries_asking_at_once_one_wins),
        T(remove_refusals),
        T(promote_learner_by_primary),
        T(promote_stale_version_returns_current),
        T(promote_refusals),
        T(create_spreads_over_distinct_zones),
        T(create_falls_back_to_shared_zones),
        T(create_skips_stale_and_member_nodes),
        T(create_not_enough_spares),
        T(create_unseen_nodes_are_not_spares),
        T(create_replicas_bounds),
        T(all_restarted_reissues_with_longest_log_primary),
        T(all_restarted_waits_for_every_member),
        T(switchover_to_named_secondary),
        T(switchover_auto_picks_most_caught_up_healthy),
        T(switchover_auto_ties_pick_first_listed),
        T(switchover_target_checks),
        T(switchover_without_healthy_secondary),
        T(repair_adds_spare_learner_in_new_zone),
        T(repair_learners_count_toward_replicas),
        T(repair_without_spare_does_nothing),
        T(repair_drops_silent_learner),
        T(repair_drops_unregistered_learner),
        T(repair_never_touches_silent_secondaries),
        T(restarted_lone_primary_gets_new_version),
        T(restarted_primary_with_secondaries_is_left_to_them),
        T(shard_valid_rejects_duplicates_and_empties),
        T(roles_and_names),
    };
    return cmocka_run_group_tests_name("placement", tests, NULL, NULL);
}
