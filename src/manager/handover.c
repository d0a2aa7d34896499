/*
 * handover.c — see handover.h for the states and why they are safe.
 *
 *   ho_start        -> io.drain                          (DRAINING)
 *   ho_drain_reply  -> decide: poll again, write (then CONFIRMING), or fail
 *   ho_tick         -> the deadline, the next poll or probe
 *   ho_probe_reply  -> DONE once the target serves
 *   fail() / done() -> io.finish, always last
 */
#include "manager/handover.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const phase_names[] = {
#define HO_PHASE_NAME(name, text) text,
    HO_PHASE_MAP(HO_PHASE_NAME)
#undef HO_PHASE_NAME
};

const char *ho_phase_name(enum ho_phase p)
{
    return (unsigned)p < sizeof(phase_names) / sizeof(phase_names[0]) ? phase_names[p] : "?";
}

void ho_params_init(ho_params *p, int64_t timeout_ms)
{
    assert(timeout_ms > 0);
    p->timeout_ms = timeout_ms;
    p->margin_ms = timeout_ms / 4 < 500 ? timeout_ms / 4 : 500;
    p->poll_ms = 2;
    p->confirm_ms = 2000;
}

static void fail(ho_job *j, int64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* FAILED: the primary (if it may still be fenced) is told to serve again. */
static void fail(ho_job *j, int64_t now, const char *fmt, ...)
{
    bool was_draining = j->phase == HO_DRAINING;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
    j->phase = HO_FAILED;
    j->ended_at = now;
    if (was_draining) j->io.resume(j->io.data, j);
    j->io.finish(j->io.data, j);
}

static void done(ho_job *j, int64_t now)
{
    j->phase = HO_DONE;
    j->ended_at = now;
    j->io.finish(j->io.data, j);
}

void ho_start(ho_job *j, const ho_params *p, const ho_io *io, const pl_shard *cur,
              const pl_shard *next, int64_t now)
{
    assert(next->cfg.shard == cur->cfg.shard && next->cfg.version == cur->cfg.version + 1);
    assert(next->cfg.primary != cur->cfg.primary);
    memset(j, 0, sizeof(*j));
    j->par = *p;
    j->io = *io;
    j->cur = *cur;
    j->next = *next;
    j->primary = cur->cfg.primary;
    j->target = next->cfg.primary;
    j->phase = HO_DRAINING;
    j->started = now;
    j->deadline = now + p->timeout_ms;
    j->next_poll = now + p->poll_ms;
    j->waiting = true;
    j->io.drain(j->io.data, j);
}

/* Drained, and the target has acknowledged everything: write the new
 * configuration (invariant 5: every committed write — here every write —
 * is on the target). */
static void write_next(ho_job *j, int64_t now)
{
    char err[256] = "";
    j->drained_at = now;
    int rc = j->io.write(j->io.data, j, err, sizeof(err));
    if (rc == 0) {
        fail(j, now,
             "the configuration of shard %" PRIu32 " changed meanwhile (it is past version %" PRIu64
             "); nothing was switched",
             j->cur.cfg.shard, j->cur.cfg.version);
        return;
    }
    if (rc < 0) {
        j->outcome_unknown = true;
        fail(j, now, "etcd failed while writing the configuration (%s); it may or may not have "
                     "changed: see cairn ctl status",
             err[0] ? err : "?");
        return;
    }
    j->phase = HO_CONFIRMING;
    j->written_at = now;
    j->io.push(j->io.data, j);
    j->waiting = true;
    j->next_poll = now + j->par.poll_ms;
    j->io.probe(j->io.data, j);
}

void ho_drain_reply(ho_job *j, const ho_status *st, int64_t now)
{
    if (j->phase != HO_DRAINING) return;
    j->waiting = false;
    j->next_poll = now + j->par.poll_ms;
    if (!st->ok) {
        fail(j, now, "the primary %016" PRIx64 " did not take the hand-over: %s", j->primary,
             st->msg ? st->msg : "no answer");
        return;
    }
    j->last = *st;
    j->last.msg = NULL;
    if (st->version != j->cur.cfg.version) {
        fail(j, now, "the primary %016" PRIx64 " is at configuration %" PRIu64 ", not %" PRIu64,
             j->primary, st->version, j->cur.cfg.version);
        return;
    }
    if (st->state == REPL_DRAIN_NONE) {
        fail(j, now, "the primary %016" PRIx64 " is no longer handing over (its drain ended)",
             j->primary);
        return;
    }
    if (st->state != REPL_DRAIN_DRAINED || st->target_match < st->last_lsn) return; /* poll */
    if (now >= j->deadline - j->par.margin_ms) {
        fail(j, now, "the primary drained too late (after %" PRId64 " ms of %" PRId64 ")",
             now - j->started, j->par.timeout_ms);
        return;
    }
    write_next(j, now);
}

void ho_probe_reply(ho_job *j, const ho_probe *pr, int64_t now)
{
    if (j->phase != HO_CONFIRMING) return;
    j->waiting = false;
    j->next_poll = now + j->par.poll_ms;
    if (!pr->ok) return;
    if (pr->version > j->next.cfg.version) {
        done(j, now); /* another change already: whether it serves is not ours to say */
        return;
    }
    if (pr->version == j->next.cfg.version && pr->role == REPL_PRIMARY && pr->serving) {
        j->served_at = now;
        done(j, now);
    }
}

void ho_tick(ho_job *j, int64_t now)
{
    switch (j->phase) {
    case HO_DRAINING:
        if (now >= j->deadline - j->par.margin_ms) {
            const ho_status *l = &j->last;
            fail(j, now,
                 "the primary %016" PRIx64 " did not drain within %" PRId64
                 " ms (last LSN %" PRIu64 ", committed %" PRIu64 ", the target has %" PRIu64 ")",
                 j->primary, now - j->started, l->last_lsn, l->commit_lsn, l->target_match);
        } else if (!j->waiting && now >= j->next_poll) {
            j->waiting = true;
            j->io.drain_status(j->io.data, j);
        }
        break;
    case HO_CONFIRMING:
        if (now >= j->written_at + j->par.confirm_ms) {
            done(j, now); /* written: a success, whether it serves yet or not */
        } else if (!j->waiting && now >= j->next_poll) {
            j->waiting = true;
            j->io.probe(j->io.data, j);
        }
        break;
    case HO_DONE:
    case HO_FAILED:
        break;
    }
}

void ho_abort(ho_job *j, const char *why, int64_t now)
{
    if (j->phase == HO_DRAINING) fail(j, now, "%s", why);
    else if (j->phase == HO_CONFIRMING) done(j, now);
}

int64_t ho_paused_ms(const ho_job *j, int64_t now)
{
    int64_t end = j->served_at ? j->served_at : j->ended_at ? j->ended_at : now;
    return end - j->started;
}
