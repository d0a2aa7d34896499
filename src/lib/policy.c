/*
 * policy.c — the scheduling policies of policy.h.
 *
 * Every policy shares one state layout (a peer per backend, a PRNG and a
 * rotation cursor) and the same create/destroy/on_start/set_scale; they
 * differ in pick, and ewma in on_done.  Each pick is one pass over the n
 * backends: replica sets are a handful of nodes, so O(n) is nothing next to
 * a network round trip, and it keeps every policy exact (no sampling error
 * except where the policy is random by definition).
 */
#include "lib/policy.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "lib/mem.h"

/* Peak-EWMA decay time constant: a sample's weight halves in about 7 s,
 * Finagle's and linkerd's default. */
#define EWMA_TAU_US 10e6
/* A failure is recorded as at least this many times the current estimate. */
#define EWMA_FAIL_FACTOR 4.0
/* WRR effective weights are weight x scale in thousandths, so slow start can
 * ramp a weight-1 backend smoothly; scaling every weight by the same
 * constant leaves the smooth sequence unchanged. */
#define WRR_UNIT 1000.0
#define SCALE_MIN 0.01

typedef struct peer {
    uint32_t weight;
    uint32_t inflight; /* on_start minus on_done */
    double scale;      /* slow start, in [SCALE_MIN, 1] */
    int64_t current;   /* WRR: current weight */
    double est_us;     /* ewma: peak-EWMA latency at stamp_us (when probed) */
    int64_t stamp_us;  /* ewma: time of the last sample */
    bool probed;       /* ewma: has at least one sample */
} peer;

typedef struct pstate {
    size_t n;
    uint64_t rng;  /* splitmix64 state */
    size_t next;   /* round-robin position; where tie-breaking scans start */
    peer p[];
} pstate;

static uint64_t rng_next(pstate *s)
{
    uint64_t z = (s->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Uniform in [0, k), k > 0.  The modulo bias is below k / 2^64. */
static size_t rng_below(pstate *s, size_t k)
{
    return (size_t)(rng_next(s) % k);
}

static bool usable(const pstate *s, const bool *eligible, size_t i)
{
    return (eligible == NULL || eligible[i]) && s->p[i].weight > 0;
}

static size_t count_usable(const pstate *s, const bool *eligible)
{
    size_t m = 0;
    for (size_t i = 0; i < s->n; i++) m += usable(s, eligible, i);
    return m;
}

/* Index of the k-th usable backend (k < count_usable). */
static int nth_usable(const pstate *s, const bool *eligible, size_t k)
{
    for (size_t i = 0; i < s->n; i++)
        if (usable(s, eligible, i) && k-- == 0) return (int)i;
    assert(0 && "nth_usable past the end");
    return -1;
}

static void *pol_create(const policy_backend *b, size_t n, uint64_t seed)
{
    if (n > INT_MAX || (n > 0 && b == NULL)) return NULL;
    pstate *s = cairn_calloc(1, sizeof(*s) + n * sizeof(s->p[0]));
    s->n = n;
    s->rng = seed;
    for (size_t i = 0; i < n; i++) s->p[i] = (peer){.weight = b[i].weight, .scale = 1.0};
    return s;
}

static void pol_destroy(void *st)
{
    cairn_free(st);
}

static peer *peer_at(void *st, int idx)
{
    pstate *s = st;
    assert(idx >= 0 && (size_t)idx < s->n);
    return &s->p[idx];
}

static void pol_on_start(void *st, int idx)
{
    peer_at(st, idx)->inflight++;
}

/* Saturating: a report for a request started against a previous state (or
 * reported twice) must not wrap the count. */
static void pol_on_done(void *st, int idx, int64_t latency_us, bool ok, int64_t now_us)
{
    peer *p = peer_at(st, idx);
    if (p->inflight > 0) p->inflight--;
}

static void pol_set_scale(void *st, int idx, double factor)
{
    if (!(factor >= SCALE_MIN)) factor = SCALE_MIN; /* NaN too */
    if (factor > 1.0) factor = 1.0;
    peer_at(st, idx)->scale = factor;
}

/* Scan the usable backends starting at s->next and return the one of least
 * cost (the first found on ties, so ties rotate); s->next moves past it. */
static int pick_least(pstate *s, const bool *eligible, double (*cost)(const pstate *, size_t, void *),
                      void *arg)
{
    int best = -1;
    double best_cost = 0;
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (s->next + k) % s->n;
        if (!usable(s, eligible, i)) continue;
        double c = cost(s, i, arg);
        if (best < 0 || c < best_cost) best = (int)i, best_cost = c;
    }
    if (best >= 0) s->next = ((size_t)best + 1) % s->n;
    return best;
}

/* ---- random ------------------------------------------------------------ */

static int random_pick(void *st, const bool *eligible, int64_t now_us)
{
    pstate *s = st;
    size_t m = count_usable(s, eligible);
    return m ? nth_usable(s, eligible, rng_below(s, m)) : -1;
}

/* ---- round-robin ------------------------------------------------------- */

/* The rotation starts at a seed-chosen backend so that gateways started
 * together do not all send their first requests to backend 0. */
static void *rr_create(const policy_backend *b, size_t n, uint64_t seed)
{
    pstate *s = pol_create(b, n, seed);
    if (s != NULL && n > 0) s->next = rng_below(s, n);
    return s;
}

static int rr_pick(void *st, const bool *eligible, int64_t now_us)
{
    pstate *s = st;
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (s->next + k) % s->n;
        if (usable(s, eligible, i)) {
            s->next = (i + 1) % s->n;
            return (int)i;
        }
    }
    return -1;
}

/* ---- weighted-round-robin ---------------------------------------------- */

/* nginx's ngx_http_upstream_get_peer (smooth weighted round-robin):
 *
 *     peer->current_weight += peer->effective_weight;
 *     total += peer->effective_weight;
 *     if (best == NULL || peer->current_weight > best->current_weight)
 *         best = peer;
 *     ...
 *     best->current_weight -= total;
 *
 * over the eligible peers, in index order (so ties go to the lower index).
 * nginx also lowers effective_weight on failures; here health is the
 * caller's, through `eligible`, and effective weight is weight x scale. */
static int wrr_pick(void *st, const bool *eligible, int64_t now_us)
{
    pstate *s = st;
    peer *best = NULL;
    int64_t total = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (!usable(s, eligible, i)) continue;
        peer *p = &s->p[i];
        int64_t eff = llround(p->weight * WRR_UNIT * p->scale);
        if (eff < 1) eff = 1;
        p->current += eff;
        total += eff;
        if (best == NULL || p->current > best->current) best = p;
    }
    if (best == NULL) return -1;
    best->current -= total;
    return (int)(best - s->p);
}

/* ---- least-outstanding and p2c ----------------------------------------- */

static double load_cost(const pstate *s, size_t i, void *arg)
{
    return (s->p[i].inflight + 1.0) / s->p[i].scale;
}

static int lor_pick(void *st, const bool *eligible, int64_t now_us)
{
    return pick_least(st, eligible, load_cost, NULL);
}

/* Two distinct candidates drawn uniformly; the first drawn wins a tie (it
 * is as random as the second). */
static int p2c_pick(void *st, const bool *eligible, int64_t now_us)
{
    pstate *s = st;
    size_t m = count_usable(s, eligible);
    if (m <= 1) return m ? nth_usable(s, eligible, 0) : -1;
    size_t a = rng_below(s, m), b = rng_below(s, m - 1);
    if (b >= a) b++;
    int ia = nth_usable(s, eligible, a), ib = nth_usable(s, eligible, b);
    return load_cost(s, (size_t)ib, NULL) < load_cost(s, (size_t)ia, NULL) ? ib : ia;
}

/* ---- ewma -------------------------------------------------------------- */

/* Peak-EWMA (Finagle's PeakEwma, linkerd's tower PeakEwma).  For backend
 * i with estimate E sampled at time T:
 *
 *   read at t      E x exp(-(t - T) / tau): decays toward 0 while idle, so
 *                  a backend once penalised is probed again eventually
 *   sample r at t  w = exp(-(t - T) / tau); if r > E x w (a peak) E = r,
 *                  at once; else E = E x w + r x (1 - w); T = t
 *   cost           read x (inflight + 1) / scale
 *
 * A backend with no sample yet costs 0 while idle, so it is probed at once
 * (Finagle's rule); while its first requests are in flight its estimate is
 * the mean read of the sampled usable backends (1 when none is), a neutral
 * guess that neither floods it before it has answered nor shuts it out.
 * (A mean alone would starve it: the best sampled backend is below the
 * mean whenever estimates differ.)  Finagle and linkerd draw two candidates
 * (p2c) over this cost; with a handful of replicas the full scan is as
 * cheap and never misses the best. */
static double ewma_read(const peer *p, int64_t now_us)
{
    int64_t dt = now_us > p->stamp_us ? now_us - p->stamp_us : 0;
    return p->est_us * exp(-(double)dt / EWMA_TAU_US);
}

typedef struct ewma_arg {
    int64_t now_us;
    double neutral;
} ewma_arg;

static double ewma_cost(const pstate *s, size_t i, void *arg)
{
    const ewma_arg *a = arg;
    const peer *p = &s->p[i];
    if (!p->probed && p->inflight == 0) return 0.0;
    double e = p->probed ? ewma_read(p, a->now_us) : a->neutral;
    return e * (p->inflight + 1.0) / p->scale;
}

static int ewma_pick(void *st, const bool *eligible, int64_t now_us)
{
    pstate *s = st;
    ewma_arg a = {now_us, 1.0};
    double sum = 0;
    size_t probed = 0;
    for (size_t i = 0; i < s->n; i++)
        if (usable(s, eligible, i) && s->p[i].probed) sum += ewma_read(&s->p[i], now_us), probed++;
    if (probed > 0) a.neutral = sum / probed;
    return pick_least(s, eligible, ewma_cost, &a);
}

static void ewma_on_done(void *st, int idx, int64_t latency_us, bool ok, int64_t now_us)
{
    pol_on_done(st, idx, latency_us, ok, now_us);
    peer *p = peer_at(st, idx);
    double r = latency_us > 0 ? (double)latency_us : 0.0;
    double cur = p->probed ? ewma_read(p, now_us) : 0.0;
    if (!ok && r < EWMA_FAIL_FACTOR * cur) r = EWMA_FAIL_FACTOR * cur;
    if (!p->probed || r > cur) {
        p->est_us = r;
    } else {
        int64_t dt = now_us > p->stamp_us ? now_us - p->stamp_us : 0;
        double w = exp(-(double)dt / EWMA_TAU_US);
        p->est_us = p->est_us * w + r * (1.0 - w);
    }
    if (!p->probed || now_us > p->stamp_us) p->stamp_us = now_us;
    p->probed = true;
}

/* ---- the table --------------------------------------------------------- */

static const policy_ops policies[] = {
    {"random", pol_create, pol_destroy, random_pick, pol_on_start, pol_on_done, NULL},
    {"round-robin", rr_create, pol_destroy, rr_pick, pol_on_start, pol_on_done, NULL},
    {"weighted-round-robin", pol_create, pol_destroy, wrr_pick, pol_on_start, pol_on_done,
     pol_set_scale},
    {"least-outstanding", pol_create, pol_destroy, lor_pick, pol_on_start, pol_on_done,
     pol_set_scale},
    {"p2c", pol_create, pol_destroy, p2c_pick, pol_on_start, pol_on_done, pol_set_scale},
    {"ewma", pol_create, pol_destroy, ewma_pick, pol_on_start, ewma_on_done, pol_set_scale},
};

const policy_ops *policy_find(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t i = 0; i < sizeof(policies) / sizeof(policies[0]); i++)
        if (strcmp(policies[i].name, name) == 0) return &policies[i];
    return NULL;
}

const policy_ops *policy_at(size_t i)
{
    return i < sizeof(policies) / sizeof(policies[0]) ? &policies[i] : NULL;
}

double policy_slow_start_factor(int64_t since_us, int64_t now_us, int64_t window_us)
{
    if (window_us <= 0) return 1.0;
    if (now_us <= since_us) return 0.1;
    uint64_t age = (uint64_t)now_us - (uint64_t)since_us; /* no signed overflow */
    if (age >= (uint64_t)window_us) return 1.0;
    return 0.1 + 0.9 * (double)age / (double)window_us;
}
