/*
 * policy.h — request scheduling policies: which backend serves a request.
 *
 * The gateway sends a replica read to one node of a shard (DESIGN.md,
 * "Gateway and request scheduling").  Each policy is a small function table
 * after nginx's peer.get/peer.free and twemproxy's dispatch/update: create
 * its state for a backend set, pick one backend among those the caller
 * deems eligible (up, in the configuration, caught up), and hear back when a
 * request starts and when its reply (or failure) arrives.
 *
 * Policies are pure: no clock, no I/O, no global state.  Time comes in as
 * `now_us` (any monotonic microsecond clock, the same one for every call on
 * one state); randomness comes from a PRNG seeded at create, so a policy
 * given the same seed and the same calls makes the same picks.
 *
 *   name                  picks
 *   random                uniformly among the eligible
 *   round-robin           the next eligible after the previous pick
 *   weighted-round-robin  nginx's smooth WRR: every eligible backend's
 *                         current weight grows by its effective weight, the
 *                         largest wins and gives back the eligible total
 *                         (weights 5,1,1 give a a b a c a a)
 *   least-outstanding     fewest requests in flight; ties rotate
 *   p2c                   two distinct random eligible backends, the one
 *                         with fewer in flight (Mitzenmacher's power of two
 *                         choices)
 *   ewma                  least peak-EWMA latency x (in flight + 1), after
 *                         Finagle's and linkerd's PeakEwma
 *
 * Weights.  Weight 0 means drained: no policy picks such a backend, as the
 * ring gives a weight-0 shard no key.  Otherwise only weighted-round-robin
 * reads weights; the load-aware policies balance on what they measure.
 *
 * Calling convention (for every policy):
 *  - Indices are positions in the array given to create, 0 <= idx < n.
 *  - on_start(idx) after sending a request to a picked backend, and
 *    exactly one on_done(idx, ...) per on_start, when the reply or the
 *    failure (timeout, connection lost) is known.  The in-flight counts are
 *    the gateway's own requests, not the backend's whole load.
 *  - When the backend set changes (a new configuration), destroy the state
 *    and create a new one; requests still in flight against the old state
 *    are simply not reported to the new one.
 *  - A state is not thread-safe; one per gateway event loop.
 */
#ifndef CAIRN_POLICY_H
#define CAIRN_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The caller's view of one backend. */
typedef struct policy_backend {
    uint32_t id;     /* the caller's id, copied, never interpreted */
    uint32_t weight; /* 0 = drained; relative share for weighted policies */
} policy_backend;

typedef struct policy_ops {
    const char *name;

    /* State for the `n` backends at `b` (copied; b may be NULL when n is
     * 0), with a PRNG seeded by `seed`.  Returns NULL only when n > INT_MAX
     * or b is NULL with n > 0.  Release with destroy. */
    void *(*create)(const policy_backend *b, size_t n, uint64_t seed);
    void (*destroy)(void *st); /* NULL is fine */

    /* Choose among the backends with eligible[i] true (eligible may be NULL:
     * all are) and weight > 0.  Returns the index, or -1 when there is none.
     * Picking does not count as starting a request: call on_start. */
    int (*pick)(void *st, const bool *eligible, int64_t now_us);

    /* A request was sent to idx (in flight + 1). */
    void (*on_start)(void *st, int idx);

    /* The request to idx finished after `latency_us`: a reply (ok) or a
     * failure (in flight - 1).  ewma records the latency; a failure counts as
     * max(latency, 4 x the backend's current estimate), so a backend that
     * fails fast never looks attractive and repeated failures push it away
     * geometrically. */
    void (*on_done)(void *st, int idx, int64_t latency_us, bool ok, int64_t now_us);

    /* Slow start: scale backend idx's share by `factor` in (0, 1], usually
     * policy_slow_start_factor().  weighted-round-robin multiplies the
     * effective weight by it (nginx's slow_start); least-outstanding, p2c and
     * ewma divide the backend's cost by it, so at 0.1 it looks ten times as
     * loaded as it is.  Factors outside (0, 1] are clamped.  NULL for random
     * and round-robin, whose picks do not weigh backends: ramp those by
     * keeping a new backend ineligible for part of the picks, or not at all. */
    void (*set_scale)(void *st, int idx, double factor);
} policy_ops;

/* The policy called `name` (the names above, exact, lower case), or NULL. */
const policy_ops *policy_find(const char *name);

/* The i-th policy, for listing the names in help and errors; NULL past the
 * last. */
const policy_ops *policy_at(size_t i);

/* The slow-start factor of a backend that became eligible at `since_us`: a
 * linear ramp from 0.1 at since_us to 1.0 at since_us + window_us, 1.0 after
 * it and when window_us <= 0, 0.1 when now_us < since_us.  The gateway
 * calls ops->set_scale(st, idx, factor) as time passes (each pick, or a
 * timer) until the factor reaches 1.0. */
double policy_slow_start_factor(int64_t since_us, int64_t now_us, int64_t window_us);

#endif
