/*
 * handover.h — the manager's side of a planned switchover, as a pure state
 * machine: no sockets, no etcd, no clock (times are arguments); it acts
 * through `ho_io`.  The node's side is lib/repl.h ("Handing over"); the
 * wiring to the network, etcd and the operator's request is
 * mgr_switchover.c; tests drive it with a fake io (tests/unit/test_handover.c).
 *
 *   ho_start --io.drain (the primary fences, for timeout_ms)--------> DRAINING
 *   DRAINING --status: not yet drained, or the target behind-------> DRAINING
 *              (again every poll_ms: io.drain_status)
 *   DRAINING --status: drained, the target holds the last LSN, before
 *              deadline - margin: io.write won --io.push, io.probe--> CONFIRMING
 *   DRAINING --deadline - margin, an error, the drain ended, the
 *              write lost or failed, ho_abort --io.resume----------> FAILED
 *   CONFIRMING --the target serves at the new version, or
 *               confirm_ms since the write (io.probe every poll_ms)-> DONE
 *   DONE, FAILED: io.finish, once, as the last thing the job does.
 *
 * Why "no acknowledged write lost": the primary is drained when its commit
 * index is its last LSN — every write it ever logged is on every secondary
 * (invariant 2) and it logs no more (fenced) — and the configuration is
 * written only then, with a secondary as primary (invariant 5).  Why no
 * failed write: nothing is left uncommitted for the demotion to cut off
 * (src/node/replica.c), and what the fenced primary refuses it refuses
 * before running it (-TRYAGAIN), which the gateway retries.
 *
 * Why the deadline margin: the primary resumes by itself at its own
 * deadline, timeout_ms after DRAIN reached it — never earlier than our
 * `deadline` (sent at start).  A configuration written before deadline -
 * margin (the margin covers the compare-and-swap and the push) finds it
 * still fenced.  One written later would still be safe (leases, invariant
 * 4) but could demote a primary that serves again, cutting off its clients'
 * held replies, so the job gives up instead.
 */
#ifndef CAIRN_HANDOVER_H
#define CAIRN_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/repl.h"
#include "manager/placement.h"

typedef struct ho_params {
    int64_t timeout_ms; /* the primary's drain; default 2000 */
    int64_t margin_ms;  /* no write after deadline - margin; default min(500, timeout / 4) */
    int64_t poll_ms;    /* status and probe period; default 2 */
    int64_t confirm_ms; /* wait this long after the write for the target to serve; default 2000 */
} ho_params;

/* Defaults for a drain of timeout_ms (> 0). */
void ho_params_init(ho_params *p, int64_t timeout_ms);

/* The primary's answer to DRAIN or DRAIN-STATUS. */
typedef struct ho_status {
    bool ok;         /* false: no answer, or an error (msg) */
    const char *msg; /* !ok: why; valid during the call only */
    enum repl_drain state;
    uint64_t version, last_lsn, commit_lsn, target_match;
} ho_status;

/* The target's answer to a probe (its CAIRN STATUS). */
typedef struct ho_probe {
    bool ok;
    uint64_t version;
    enum repl_role role;
    bool serving;
} ho_probe;

#define HO_PHASE_MAP(X)                                                                    \
    X(DRAINING, "draining")     /* waiting for the primary to drain */                     \
    X(CONFIRMING, "confirming") /* written; waiting for the target to serve */             \
    X(DONE, "done")             /* written (the target may or may not serve yet) */       \
    X(FAILED, "failed")         /* nothing written (or, etcd failing, unknown) */

enum ho_phase {
#define HO_PHASE_ENUM(name, text) HO_##name,
    HO_PHASE_MAP(HO_PHASE_ENUM)
#undef HO_PHASE_ENUM
};
/* "draining", ...; a static string. */
const char *ho_phase_name(enum ho_phase p);

typedef struct ho_job ho_job;

/* What the job asks of its host.  Calls are synchronous and must not
 * re-enter the job; answers come back later through ho_drain_reply /
 * ho_probe_reply (exactly one per drain, drain_status or probe, even if
 * only to say it failed). */
typedef struct ho_io {
    void *data;
    /* CAIRN DRAIN <shard> <version> <timeout_ms> <target> to j->primary. */
    void (*drain)(void *data, const ho_job *j);
    /* CAIRN DRAIN-STATUS <shard> <version> <target> to j->primary. */
    void (*drain_status)(void *data, const ho_job *j);
    /* CAIRN RESUME <shard> <version> to j->primary; no answer expected. */
    void (*resume)(void *data, const ho_job *j);
    /* Compare-and-swap j->next over j->cur: 1 written, 0 someone else's
     * change won, < 0 etcd failed (err gets why; the write's fate is
     * unknown). */
    int (*write)(void *data, const ho_job *j, char *err, size_t errlen);
    /* Tell the members of j->next at once (no answer expected). */
    void (*push)(void *data, const ho_job *j);
    /* Ask j->target how it stands. */
    void (*probe)(void *data, const ho_job *j);
    /* The job is DONE or FAILED; it does nothing more (the host may free it
     * from inside this call). */
    void (*finish)(void *data, const ho_job *j);
} ho_io;

/* One switchover.  The host embeds it and reads it; only ho_* change it. */
struct ho_job {
    ho_params par;
    ho_io io;
    pl_shard cur, next;      /* the configuration before and after */
    uint64_t primary, target; /* cur's primary, next's primary */
    enum ho_phase phase;
    bool waiting;            /* an answer is due */
    int64_t started, deadline, next_poll;
    int64_t drained_at, written_at, served_at, ended_at; /* 0 = not (yet) */
    ho_status last;          /* the newest status from the primary (msg NULL) */
    bool outcome_unknown;    /* FAILED by an etcd error while writing */
    char why[512];           /* FAILED: the reason */
};

/* Start: cur is the shard's configuration now, next the one to write
 * (pl_switchover's result: version + 1, next.cfg.primary a secondary of
 * cur).  Calls io.drain. */
void ho_start(ho_job *j, const ho_params *p, const ho_io *io, const pl_shard *cur,
              const pl_shard *next, int64_t now);
/* Every poll_ms or so: polls, deadlines. */
void ho_tick(ho_job *j, int64_t now);
void ho_drain_reply(ho_job *j, const ho_status *st, int64_t now);
void ho_probe_reply(ho_job *j, const ho_probe *pr, int64_t now);
/* Give up now (the manager stops being active, or is stopping): FAILED,
 * with io.resume while still DRAINING; DONE if already written. */
void ho_abort(ho_job *j, const char *why, int64_t now);
/* How long the shard served no writes: from DRAIN until the target served
 * (or until the job ended, or now while it runs). */
int64_t ho_paused_ms(const ho_job *j, int64_t now);

#endif
