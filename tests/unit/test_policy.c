/*
 * test_policy.c — the scheduling policies (src/lib/policy.c).
 *
 * Covers: the table (names, lookup); for every policy, picks only among
 * eligible, non-drained backends and -1 when there is none; smooth WRR's
 * exact sequence and its accuracy over 100,000 picks; round-robin's exact
 * rotation; determinism (same seed, same picks); slow start (the factor's
 * ramp, and what it does to WRR and the load-aware policies); ewma's
 * neutral cost for a backend with no sample yet; and two simulations:
 *
 *   load   10,000 requests at a fixed rate onto six single-server FIFO
 *          backends with exponential service times of mean 1,1,1,2,2,4 ms
 *          (and again onto ten equal 1 ms backends): p2c's and
 *          least-outstanding's worst in-flight count and latency against
 *          random's.
 *   ewma   three 1 ms backends at 100 requests/s; backend 0 turns 10x slow
 *          for requests 2,000..4,999, then recovers: its share must fall
 *          below 10% at once and come back after.
 *
 * The simulations run on a discrete microsecond clock with their own fixed
 * seed, so every figure they print is reproducible.
 */
#include <setjmp.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/policy.h"

#define NPOL 6
static const char *const names[NPOL] = {"random", "round-robin", "weighted-round-robin",
                                        "least-outstanding", "p2c", "ewma"};

/* One policy state under test; teardown releases it even when a case fails
 * half way. */
typedef struct fx {
    const policy_ops *ops;
    void *st;
} fx;

static int setup(void **state)
{
    *state = test_calloc(1, sizeof(fx));
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    if (f->ops != NULL) f->ops->destroy(f->st);
    test_free(f);
    return 0;
}

/* Replace the fixture's state with a new one of policy `name`. */
static void *use(fx *f, const char *name, const policy_backend *b, size_t n, uint64_t seed)
{
    if (f->ops != NULL) f->ops->destroy(f->st);
    f->ops = policy_find(name);
    assert_non_null(f->ops);
    f->st = f->ops->create(b, n, seed);
    assert_non_null(f->st);
    return f->st;
}

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double uniform01(uint64_t *s)
{
    return (double)(splitmix64(s) >> 11) * 0x1p-53;
}

static void table_lists_every_policy(void **state)
{
    (void)state;
    for (size_t i = 0; i < NPOL; i++) {
        const policy_ops *o = policy_find(names[i]);
        assert_non_null(o);
        assert_string_equal(o->name, names[i]);
        assert_ptr_equal(policy_at(i), o);
        assert_non_null(o->create);
        assert_non_null(o->destroy);
        assert_non_null(o->pick);
        assert_non_null(o->on_start);
        assert_non_null(o->on_done);
    }
    assert_null(policy_at(NPOL));
    assert_null(policy_find("Random"));
    assert_null(policy_find("wrr"));
    assert_null(policy_find(""));
    assert_null(policy_find(NULL));
}

static void picks_only_eligible_backends(void **state)
{
    fx *f = *state;
    static const policy_backend b[5] = {{10, 1}, {11, 2}, {12, 3}, {13, 0}, {14, 1}};
    for (size_t p = 0; p < NPOL; p++) {
        void *st = use(f, names[p], b, 5, 7);
        uint64_t rng = 99;
        int64_t now = 0;
        size_t picks = 0;
        for (int round = 0; round < 5000; round++) {
            bool el[5];
            bool any = false;
            uint64_t bits = splitmix64(&rng);
            for (size_t i = 0; i < 5; i++) {
                el[i] = (bits >> i) & 1;
                any |= el[i] && b[i].weight > 0;
            }
            int idx = f->ops->pick(st, el, now);
            if (!any) {
                assert_int_equal(idx, -1);
                continue;
            }
            assert_true(idx >= 0 && idx < 5);
            assert_true(el[idx]);
            assert_true(b[idx].weight > 0); /* weight 0: drained */
            f->ops->on_start(st, idx);
            f->ops->on_done(st, idx, 100 + (int64_t)(bits >> 40) % 5000, (bits >> 8) & 1, now);
            now += 1000;
            picks++;
        }
        assert_true(picks > 1000);
        /* Nothing eligible, and NULL meaning everything. */
        bool none[5] = {false, false, false, false, false};
        assert_int_equal(f->ops->pick(st, none, now), -1);
        bool only_drained[5] = {false, false, false, true, false};
        assert_int_equal(f->ops->pick(st, only_drained, now), -1);
        int idx = f->ops->pick(st, NULL, now);
        assert_true(idx >= 0 && idx < 5 && idx != 3);
        /* No backend at all. */
        void *empty = f->ops->create(NULL, 0, 1);
        assert_non_null(empty);
        assert_int_equal(f->ops->pick(empty, NULL, 0), -1);
        f->ops->destroy(empty);
        assert_null(f->ops->create(NULL, 1, 1));
    }
}

static void wrr_smooth_sequence(void **state)
{
    fx *f = *state;
    static const policy_backend b[3] = {{1, 5}, {2, 1}, {3, 1}};
    void *st = use(f, "weighted-round-robin", b, 3, 12345);
    static const char want[] = "aabacaa"; /* nginx's example */
    for (int cycle = 0; cycle < 3; cycle++) {
        char got[8] = {0};
        for (int i = 0; i < 7; i++) got[i] = (char)('a' + f->ops->pick(st, NULL, 0));
        assert_string_equal(got, want);
    }
}

static void wrr_follows_weights(void **state)
{
    fx *f = *state;
    static const uint32_t sets[2][3] = {{5, 1, 1}, {3, 2, 1}};
    for (int t = 0; t < 2; t++) {
        policy_backend b[3];
        uint32_t total = 0;
        for (int i = 0; i < 3; i++) b[i] = (policy_backend){(uint32_t)i, sets[t][i]}, total += sets[t][i];
        void *st = use(f, "weighted-round-robin", b, 3, 1);
        size_t cnt[3] = {0};
        const size_t picks = 100000;
        for (size_t i = 0; i < picks; i++) cnt[f->ops->pick(st, NULL, 0)]++;
        double worst = 0;
        for (int i = 0; i < 3; i++) {
            double want = (double)sets[t][i] / total, got = (double)cnt[i] / picks;
            double err = got > want ? (got - want) / want : (want - got) / want;
            if (err > worst) worst = err;
        }
        printf("[policy] wrr weights %u,%u,%u: picks %zu/%zu/%zu of %zu, worst relative error %.5f%%\n",
               sets[t][0], sets[t][1], sets[t][2], cnt[0], cnt[1], cnt[2], picks, worst * 100);
        assert_true(worst < 0.01);
    }
    /* Eligibility changes keep proportions among the rest. */
    static const policy_backend b[3] = {{1, 3}, {2, 2}, {3, 1}};
    void *st = use(f, "weighted-round-robin", b, 3, 1);
    bool el[3] = {true, false, true};
    size_t cnt[3] = {0};
    for (int i = 0; i < 4000; i++) cnt[f->ops->pick(st, el, 0)]++;
    assert_int_equal(cnt[1], 0);
    assert_int_equal(cnt[0], 3000);
    assert_int_equal(cnt[2], 1000);
}

static void round_robin_rotates_exactly(void **state)
{
    fx *f = *state;
    static const policy_backend b[4] = {{1, 1}, {2, 5}, {3, 1}, {4, 1}};
    void *st = use(f, "round-robin", b, 4, 3);
    int first = f->ops->pick(st, NULL, 0);
    assert_true(first >= 0 && first < 4);
    for (int i = 1; i <= 12; i++) assert_int_equal(f->ops->pick(st, NULL, 0), (first + i) % 4);
    /* An ineligible backend is skipped and the rotation goes on after it. */
    int prev = f->ops->pick(st, NULL, 0);
    bool el[4] = {true, true, true, true};
    el[(prev + 1) % 4] = false;
    assert_int_equal(f->ops->pick(st, el, 0), (prev + 2) % 4);
    assert_int_equal(f->ops->pick(st, el, 0), (prev + 3) % 4);
    assert_int_equal(f->ops->pick(st, el, 0), (prev + 4) % 4);
    assert_int_equal(f->ops->pick(st, el, 0), (prev + 6) % 4);
    /* In-flight counts and weights do not bend the rotation. */
    f->ops->on_start(st, 0);
    f->ops->on_start(st, 0);
    int a = f->ops->pick(st, NULL, 0);
    assert_int_equal(f->ops->pick(st, NULL, 0), (a + 1) % 4);
}

static void least_outstanding_prefers_idle_and_rotates_ties(void **state)
{
    fx *f = *state;
    static const policy_backend b[3] = {{1, 1}, {2, 1}, {3, 1}};
    void *st = use(f, "least-outstanding", b, 3, 0);
    /* All idle: ties rotate, 0 1 2 0 ... */
    for (int i = 0; i < 6; i++) assert_int_equal(f->ops->pick(st, NULL, 0), i % 3);
    f->ops->on_start(st, 0);
    f->ops->on_start(st, 1);
    assert_int_equal(f->ops->pick(st, NULL, 0), 2);
    f->ops->on_start(st, 2);
    f->ops->on_start(st, 2);
    int p = f->ops->pick(st, NULL, 0);
    assert_true(p == 0 || p == 1);
    f->ops->on_done(st, 1, 10, true, 0);
    assert_int_equal(f->ops->pick(st, NULL, 0), 1);
    /* A done without a start does not wrap the count. */
    for (int i = 0; i < 5; i++) f->ops->on_done(st, 1, 10, true, 0);
    assert_int_equal(f->ops->pick(st, NULL, 0), 1);
}

static void p2c_takes_the_less_loaded_of_two(void **state)
{
    fx *f = *state;
    static const policy_backend b[3] = {{1, 1}, {2, 1}, {3, 1}};
    void *st = use(f, "p2c", b, 3, 42);
    /* Backend 2 heavily loaded: it can win only when both candidates are
     * it, which p2c never draws (distinct candidates). */
    for (int i = 0; i < 50; i++) f->ops->on_start(st, 2);
    for (int i = 0; i < 1000; i++) assert_int_not_equal(f->ops->pick(st, NULL, 0), 2);
    /* Two eligible, one loaded: always the other. */
    bool el[3] = {false, true, true};
    for (int i = 0; i < 100; i++) assert_int_equal(f->ops->pick(st, el, 0), 1);
    /* One eligible: that one, whatever its load. */
    bool one[3] = {false, false, true};
    assert_int_equal(f->ops->pick(st, one, 0), 2);
}

/* The picks of `name` under a fixed mixed workload, hashed. */
static uint64_t pick_trace(fx *f, const char *name, uint64_t seed)
{
    static const policy_backend b[5] = {{1, 4}, {2, 1}, {3, 2}, {4, 1}, {5, 3}};
    void *st = use(f, name, b, 5, seed);
    uint64_t rng = 5, h = 1469598103934665603ull;
    int inflight[64], ninflight = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t r = splitmix64(&rng);
        int idx = f->ops->pick(st, NULL, i * 100);
        f->ops->on_start(st, idx);
        inflight[ninflight++] = idx;
        if (ninflight == 64 || (r & 1)) {
            int k = (int)((r >> 8) % (uint64_t)ninflight);
            f->ops->on_done(st, inflight[k], (int64_t)(r >> 32) % 3000, (r & 6) != 0, i * 100);
            inflight[k] = inflight[--ninflight];
        }
        h = (h ^ (uint64_t)idx) * 1099511628211ull;
    }
    return h;
}

static void same_seed_same_picks(void **state)
{
    fx *f = *state;
    for (size_t p = 0; p < NPOL; p++) {
        assert_true(pick_trace(f, names[p], 17) == pick_trace(f, names[p], 17));
        assert_true(pick_trace(f, names[p], 0) == pick_trace(f, names[p], 0));
    }
    /* The seed matters where the policy is random. */
    assert_true(pick_trace(f, "random", 17) != pick_trace(f, "random", 18));
    assert_true(pick_trace(f, "p2c", 17) != pick_trace(f, "p2c", 18));
}

static void random_is_uniform_over_eligible(void **state)
{
    fx *f = *state;
    static const policy_backend b[4] = {{1, 1}, {2, 9}, {3, 1}, {4, 1}};
    void *st = use(f, "random", b, 4, 2024);
    bool el[4] = {true, true, false, true};
    size_t cnt[4] = {0};
    for (int i = 0; i < 90000; i++) cnt[f->ops->pick(st, el, 0)]++;
    assert_int_equal(cnt[2], 0);
    for (int i = 0; i < 4; i++)
        if (i != 2) assert_true(cnt[i] > 29000 && cnt[i] < 31000); /* weights ignored */
}

static void slow_start_ramps_and_scales(void **state)
{
    fx *f = *state;
    assert_true(policy_slow_start_factor(1000, 1000, 10000) == 0.1);
    assert_true(policy_slow_start_factor(1000, 500, 10000) == 0.1);
    assert_true(policy_slow_start_factor(1000, 6000, 10000) == 0.55);
    assert_true(policy_slow_start_factor(1000, 11000, 10000) == 1.0);
    assert_true(policy_slow_start_factor(1000, 99999, 10000) == 1.0);
    assert_true(policy_slow_start_factor(1000, 1000, 0) == 1.0);
    assert_true(policy_slow_start_factor(INT64_MIN, INT64_MAX, INT64_MAX) == 1.0);
    double prev = 0;
    for (int64_t t = 0; t <= 10000; t += 500) {
        double x = policy_slow_start_factor(0, t, 10000);
        assert_true(x >= prev && x >= 0.1 && x <= 1.0);
        prev = x;
    }
    assert_null(policy_find("random")->set_scale);
    assert_null(policy_find("round-robin")->set_scale);

    /* WRR: a weight-1 backend at factor 0.1 next to one at full weight 1
     * gets 0.1 / 1.1 of the picks. */
    static const policy_backend b[2] = {{1, 1}, {2, 1}};
    void *st = use(f, "weighted-round-robin", b, 2, 0);
    f->ops->set_scale(st, 1, 0.1);
    size_t cnt[2] = {0};
    for (int i = 0; i < 11000; i++) cnt[f->ops->pick(st, NULL, 0)]++;
    assert_int_equal(cnt[1], 1000);
    f->ops->set_scale(st, 1, 7.0); /* clamped to 1 */
    cnt[0] = cnt[1] = 0;
    for (int i = 0; i < 1000; i++) cnt[f->ops->pick(st, NULL, 0)]++;
    assert_true(cnt[1] >= 499 && cnt[1] <= 501);

    /* Load-aware: at factor 0.25 an idle backend looks as loaded as one
     * with three requests in flight. */
    static const char *const load_aware[] = {"least-outstanding", "p2c", "ewma"};
    for (int p = 0; p < 3; p++) {
        st = use(f, load_aware[p], b, 2, 0);
        for (int i = 0; i < 2; i++) { /* equal latencies, for ewma */
            f->ops->on_start(st, i);
            f->ops->on_done(st, i, 1000, true, 0);
        }
        f->ops->set_scale(st, 1, 0.25);
        f->ops->on_start(st, 0);
        f->ops->on_start(st, 0);
        assert_int_equal(f->ops->pick(st, NULL, 0), 0); /* cost 3 < 4 */
        f->ops->set_scale(st, 1, 1.0);
        assert_int_equal(f->ops->pick(st, NULL, 0), 1);
    }
}

static void ewma_neutral_cost_for_new_backends(void **state)
{
    fx *f = *state;
    static const policy_backend b[3] = {{1, 1}, {2, 1}, {3, 1}};
    void *st = use(f, "ewma", b, 3, 0);
    /* Backends 0 and 1 measured at 1 ms and 3 ms; 2 never sampled.  Idle,
     * it is probed at once; with the probe in flight it costs the mean of
     * the others (2 ms) x 2. */
    int64_t now = 1000000;
    bool two[3] = {true, true, false};
    f->ops->on_start(st, 0);
    f->ops->on_done(st, 0, 1000, true, now);
    f->ops->on_start(st, 1);
    f->ops->on_done(st, 1, 3000, true, now);
    assert_int_equal(f->ops->pick(st, two, now), 0);
    assert_int_equal(f->ops->pick(st, NULL, now), 2);
    f->ops->on_start(st, 2);
    assert_int_equal(f->ops->pick(st, NULL, now), 0); /* 1 ms, 3 ms, 4 ms */
    f->ops->on_start(st, 0);
    assert_int_equal(f->ops->pick(st, NULL, now), 0); /* 2 ms, 3 ms, 4 ms */
    f->ops->on_start(st, 0);
    assert_int_not_equal(f->ops->pick(st, NULL, now), 2); /* 3 ms, 3 ms, 4 ms */
    /* Peak sensitivity: one slow reply replaces the average at once. */
    f->ops->on_done(st, 0, 50000, true, now);
    f->ops->on_done(st, 2, 1000, true, now);
    assert_int_equal(f->ops->pick(st, NULL, now), 2); /* 2 x 50 ms, 3 ms, 1 ms */
    /* A failure counts as at least 4x the estimate, even a fast one. */
    f->ops->on_start(st, 2);
    f->ops->on_done(st, 2, 10, false, now);
    assert_int_equal(f->ops->pick(st, NULL, now), 1); /* 2 x 50 ms, 3 ms, 4 ms */
    bool not1[3] = {true, false, true};
    assert_int_equal(f->ops->pick(st, not1, now), 2);
    /* Estimates decay while not sampled: a minute later backend 0's 50 ms
     * reads 50 x e^-6 = 0.12 ms (x 2 for its request in flight), below the
     * others' fresh 3 ms, so it is tried again. */
    now += 60000000;
    f->ops->on_start(st, 1);
    f->ops->on_done(st, 1, 3000, true, now);
    f->ops->on_start(st, 2);
    f->ops->on_done(st, 2, 3000, true, now);
    assert_int_equal(f->ops->pick(st, NULL, now), 0);
}

/* ---- simulations -------------------------------------------------------- */

#define SIM_REQS 10000
#define SIM_MAXB 10

typedef struct sim_cfg {
    size_t n;
    double service_us[SIM_MAXB]; /* mean service time per backend */
    bool exponential;            /* exponential service times, else fixed */
    int64_t interval_us;         /* between arrivals */
    /* Backend `slow` serves `slow_factor` x slower for requests in
     * [slow_from, slow_to). */
    int slow;
    double slow_factor;
    int slow_from, slow_to;
} sim_cfg;

typedef struct sim_out {
    int picks[SIM_REQS];
    unsigned max_inflight; /* worst in-flight count seen at any backend */
    double mean_latency_us, p99_latency_us;
    size_t count[SIM_MAXB];
} sim_out;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Requests arrive every interval_us; each backend serves its queue one at
 * a time, in order.  A request's service time is drawn per request (not
 * per backend) from the simulation's own seed, so every policy sees the
 * same work.  Completions due by an arrival are reported before it. */
static void simulate(fx *f, const char *name, uint64_t seed, const sim_cfg *c, sim_out *o)
{
    policy_backend b[SIM_MAXB];
    for (size_t i = 0; i < c->n; i++) b[i] = (policy_backend){(uint32_t)i, 1};
    void *st = use(f, name, b, c->n, seed);
    memset(o, 0, sizeof(*o));

    /* Per backend, a FIFO of (send, completion) times of requests in flight. */
    static int64_t sent[SIM_MAXB][SIM_REQS], done_at[SIM_MAXB][SIM_REQS];
    size_t head[SIM_MAXB] = {0}, tail[SIM_MAXB] = {0};
    int64_t free_at[SIM_MAXB] = {0};
    static int64_t lat[SIM_REQS];
    size_t nlat = 0;
    uint64_t rng = 0xC0FFEE;

    for (int k = 0; k <= SIM_REQS; k++) {
        int64_t now = k < SIM_REQS ? (int64_t)k * c->interval_us : INT64_MAX;
        for (;;) { /* report completions due by now, earliest first */
            int best = -1;
            for (size_t i = 0; i < c->n; i++)
                if (head[i] < tail[i] && done_at[i][head[i]] <= now &&
                    (best < 0 || done_at[i][head[i]] < done_at[best][head[best]]))
                    best = (int)i;
            if (best < 0) break;
            int64_t t = done_at[best][head[best]];
            lat[nlat++] = t - sent[best][head[best]];
            f->ops->on_done(st, best, t - sent[best][head[best]], true, t);
            head[best]++;
        }
        if (k == SIM_REQS) break;

        double draw = c->exponential ? -log(1.0 - uniform01(&rng)) : 1.0;
        int idx = f->ops->pick(st, NULL, now);
        assert_true(idx >= 0 && (size_t)idx < c->n);
        f->ops->on_start(st, idx);
        double svc = c->service_us[idx] * draw;
        if (idx == c->slow && k >= c->slow_from && k < c->slow_to) svc *= c->slow_factor;
        int64_t start = free_at[idx] > now ? free_at[idx] : now;
        free_at[idx] = start + (int64_t)svc + 1;
        sent[idx][tail[idx]] = now;
        done_at[idx][tail[idx]++] = free_at[idx];
        o->picks[k] = idx;
        o->count[idx]++;
        unsigned inflight = (unsigned)(tail[idx] - head[idx]);
        if (inflight > o->max_inflight) o->max_inflight = inflight;
    }
    assert_int_equal(nlat, SIM_REQS);
    double sum = 0;
    for (size_t i = 0; i < nlat; i++) sum += (double)lat[i];
    qsort(lat, nlat, sizeof(lat[0]), cmp_i64);
    o->mean_latency_us = sum / nlat;
    o->p99_latency_us = (double)lat[nlat * 99 / 100];
}

static void simulated_load(fx *f, const sim_cfg *c, const char *title, sim_out out[NPOL])
{
    printf("[policy] simulation: %s\n", title);
    printf("[policy]   %-21s %12s %10s %10s  picks per backend\n", "policy", "max inflight",
           "mean ms", "p99 ms");
    for (size_t p = 0; p < NPOL; p++) {
        simulate(f, names[p], 1, c, &out[p]);
        char counts[128];
        size_t len = 0;
        for (size_t i = 0; i < c->n; i++)
            len += (size_t)snprintf(counts + len, sizeof(counts) - len, " %zu", out[p].count[i]);
        printf("[policy]   %-21s %12u %10.2f %10.2f %s\n", names[p], out[p].max_inflight,
               out[p].mean_latency_us / 1000, out[p].p99_latency_us / 1000, counts);
    }
}

enum { P_RANDOM, P_RR, P_WRR, P_LOR, P_P2C, P_EWMA };

static void load_aware_policies_beat_random(void **state)
{
    fx *f = *state;
    static sim_out out[NPOL];
    /* 1,400 requests/s onto 4,250/s of capacity: a third loaded overall,
     * but random sends a sixth of them to the 4 ms backend (93% busy). */
    sim_cfg mixed = {.n = 6, .service_us = {1000, 1000, 1000, 2000, 2000, 4000},
                     .exponential = true, .interval_us = 714, .slow = -1};
    simulated_load(f, &mixed, "6 backends, exponential service 1,1,1,2,2,4 ms, 1,400 req/s, "
                              "10,000 requests", out);
    assert_true(out[P_P2C].max_inflight < out[P_RANDOM].max_inflight);
    assert_true(out[P_LOR].max_inflight < out[P_RANDOM].max_inflight);
    assert_true(out[P_LOR].mean_latency_us < out[P_RANDOM].mean_latency_us);
    assert_true(out[P_P2C].mean_latency_us < out[P_RANDOM].mean_latency_us);
    assert_true(out[P_EWMA].mean_latency_us < out[P_RANDOM].mean_latency_us);

    /* Ten equal backends at 90% load: random's queues still wander. */
    sim_cfg equal = {.n = 10, .exponential = true, .interval_us = 111, .slow = -1};
    for (size_t i = 0; i < 10; i++) equal.service_us[i] = 1000;
    simulated_load(f, &equal, "10 backends, exponential service 1 ms, 9,000 req/s, 10,000 requests",
                   out);
    assert_true(out[P_P2C].max_inflight < out[P_RANDOM].max_inflight);
    assert_true(out[P_LOR].max_inflight < out[P_RANDOM].max_inflight);
    assert_true(out[P_LOR].mean_latency_us < out[P_RANDOM].mean_latency_us);
}

static void ewma_leaves_a_slow_backend_and_comes_back(void **state)
{
    fx *f = *state;
    static sim_out o;
    sim_cfg c = {.n = 3, .service_us = {1000, 1000, 1000}, .exponential = false,
                 .interval_us = 10000, .slow = 0, .slow_factor = 10, .slow_from = 2000,
                 .slow_to = 5000};
    simulate(f, "ewma", 1, &c, &o);
    printf("[policy] ewma: 3 backends of 1 ms, 100 req/s; backend 0 at 10 ms for requests "
           "2000..4999\n[policy]   backend 0's share per 500 requests:");
    double share[SIM_REQS / 500];
    for (int w = 0; w < SIM_REQS / 500; w++) {
        size_t n0 = 0;
        for (int k = w * 500; k < (w + 1) * 500; k++) n0 += o.picks[k] == 0;
        share[w] = n0 / 500.0;
        printf(" %.0f%%", share[w] * 100);
    }
    /* Within 50 requests of the jump backend 0 is left (its first slow
     * reply is enough: peak sensitivity); after recovery its estimate
     * decays until it is tried again, and one fast reply restores it. */
    const int within = 50;
    size_t early = 0, late = 0;
    for (int k = 2000; k < 2000 + within; k++) early += o.picks[k] == 0;
    for (int k = 2000 + within; k < 5000; k++) late += o.picks[k] == 0;
    int back = -1;
    for (int k = 5000; k < SIM_REQS && back < 0; k++)
        if (o.picks[k] == 0) back = k;
    assert_true(back > 0 && back + 1000 <= SIM_REQS);
    size_t after = 0;
    for (int k = back + 1; k <= back + 1000; k++) after += o.picks[k] == 0;
    printf("\n[policy]   requests 2000..%d: %zu to backend 0; %d..4999: %zu (%.2f%%); first "
           "after recovery: request %d (%.1f s later); of the next 1000: %.1f%%\n",
           2000 + within - 1, early, 2000 + within, late, 100.0 * late / (3000 - within), back,
           (back - 5000) * c.interval_us / 1e6, after / 10.0);
    assert_true(share[0] > 0.30 && share[3] > 0.30); /* balanced before */
    assert_true((double)late / (3000 - within) < 0.10);
    /* Back within 3 decay time constants (30 s), then balanced again. */
    assert_true(back < 5000 + 3000);
    assert_true(after >= 300);
    for (int w = 16; w < 20; w++) assert_true(share[w] > 0.30);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(table_lists_every_policy),
        T(picks_only_eligible_backends),
        T(wrr_smooth_sequence),
        T(wrr_follows_weights),
        T(round_robin_rotates_exactly),
        T(least_outstanding_prefers_idle_and_rotates_ties),
        T(p2c_takes_the_less_loaded_of_two),
        T(same_seed_same_picks),
        T(random_is_uniform_over_eligible),
        T(slow_start_ramps_and_scales),
        T(ewma_neutral_cost_for_new_backends),
        T(load_aware_policies_beat_random),
        T(ewma_leaves_a_slow_backend_and_comes_back),
    };
    return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
