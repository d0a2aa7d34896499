/*
 * test_handover.c — the manager's switchover state machine
 * (src/manager/handover.c) with a fake io and a fake clock.
 *
 * Covers: the whole way (DRAIN, polls while draining, a drained primary
 * whose target is still behind, the write, the push, probes until the
 * target serves, the pause measured); a primary that does not drain in
 * time (RESUME, nothing written); one drained too late; a lost
 * compare-and-swap and an etcd failure (RESUME, nothing claimed); a
 * primary that refuses or answers nothing, or whose drain ended; a target
 * that does not serve within confirm_ms (still a success: written); an
 * abort while draining and after the write; the default parameters.
 *
 * Shard 4 at version 7: primary 1, secondaries 2 and 3; the switchover
 * goes to 2 (version 8: primary 2, secondaries 1 and 3).  The clock starts
 * at T0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "manager/handover.h"

#define T0 100000

typedef struct fx {
    ho_job j;
    ho_params par;
    ho_io io;
    pl_shard cur, next;
    int64_t now;
    /* calls */
    int drains, statuses, resumes, writes, pushes, probes, finishes;
    int write_rc;          /* what the next write answers */
    enum ho_phase finished_as;
} fx;

static void f_drain(void *d, const ho_job *j)
{
    fx *f = d;
    assert_int_equal(j->primary, 1);
    assert_int_equal(j->target, 2);
    f->drains++;
}
static void f_status(void *d, const ho_job *j) { (void)j, ((fx *)d)->statuses++; }
static void f_resume(void *d, const ho_job *j) { (void)j, ((fx *)d)->resumes++; }
static int f_write(void *d, const ho_job *j, char *err, size_t errlen)
{
    fx *f = d;
    f->writes++;
    assert_int_equal(j->next.cfg.version, 8);
    if (f->write_rc < 0) snprintf(err, errlen, "context deadline exceeded");
    return f->write_rc;
}
static void f_push(void *d, const ho_job *j) { (void)j, ((fx *)d)->pushes++; }
static void f_probe(void *d, const ho_job *j) { (void)j, ((fx *)d)->probes++; }
static void f_finish(void *d, const ho_job *j)
{
    fx *f = d;
    f->finishes++;
    f->finished_as = j->phase;
}

static int setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    memset(&f->cur, 0, sizeof(f->cur));
    f->cur.cfg = (repl_config){.shard = 4, .version = 7, .primary = 1, .secondaries = {2, 3},
                               .nsec = 2};
    f->cur.replicas = 3;
    f->next = f->cur;
    f->next.cfg = (repl_config){.shard = 4, .version = 8, .primary = 2, .secondaries = {1, 3},
                                .nsec = 2};
    ho_params_init(&f->par, 2000);
    f->io = (ho_io){.data = f, .drain = f_drain, .drain_status = f_status, .resume = f_resume,
                    .write = f_write, .push = f_push, .probe = f_probe, .finish = f_finish};
    f->write_rc = 1;
    f->now = T0;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    test_free(*state);
    return 0;
}

static void start(fx *f)
{
    ho_start(&f->j, &f->par, &f->io, &f->cur, &f->next, f->now);
    assert_int_equal(f->j.phase, HO_DRAINING);
    assert_int_equal(f->drains, 1);
}

static void status(fx *f, enum repl_drain state, uint64_t last, uint64_t commit, uint64_t match)
{
    ho_status st = {.ok = true, .state = state, .version = 7, .last_lsn = last,
                    .commit_lsn = commit, .target_match = match};
    ho_drain_reply(&f->j, &st, f->now);
}

static void tick_to(fx *f, int64_t t)
{
    while (f->now < t) ho_tick(&f->j, ++f->now);
}

static void probe(fx *f, uint64_t version, enum repl_role role, bool serving)
{
    ho_probe pr = {.ok = true, .version = version, .role = role, .serving = serving};
    ho_probe_reply(&f->j, &pr, f->now);
}

/* ---- the whole way ---- */

static void drained_and_caught_up_writes_pushes_and_waits_for_the_target(void **state)
{
    fx *f = *state;
    start(f);
    f->now += 1;
    status(f, REPL_DRAIN_DRAINING, 50, 47, 47); /* writes still in flight */
    assert_int_equal(f->writes, 0);
    tick_to(f, T0 + 2);
    assert_int_equal(f->statuses, 0); /* one poll period after the answer */
    tick_to(f, T0 + 3);
    assert_int_equal(f->statuses, 1);
    tick_to(f, T0 + 10);
    assert_int_equal(f->statuses, 1); /* never two requests out at once */
    status(f, REPL_DRAIN_DRAINED, 50, 50, 49); /* drained, but the target lags its ack */
    assert_int_equal(f->writes, 0);
    tick_to(f, T0 + 12);
    assert_int_equal(f->statuses, 2);
    status(f, REPL_DRAIN_DRAINED, 50, 50, 50);
    assert_int_equal(f->writes, 1);
    assert_int_equal(f->pushes, 1);
    assert_int_equal(f->probes, 1);
    assert_int_equal(f->j.phase, HO_CONFIRMING);
    assert_int_equal(f->j.drained_at, T0 + 12);
    assert_int_equal(f->resumes, 0);
    f->now += 1;
    probe(f, 7, REPL_SECONDARY, false); /* has not heard of version 8 yet */
    tick_to(f, T0 + 15);
    assert_int_equal(f->probes, 2);
    probe(f, 8, REPL_PRIMARY, false); /* waiting for its secondaries' answers */
    assert_int_equal(f->finishes, 0);
    tick_to(f, T0 + 17);
    assert_int_equal(f->probes, 3);
    f->now = T0 + 18;
    probe(f, 8, REPL_PRIMARY, true);
    assert_int_equal(f->finishes, 1);
    assert_int_equal(f->finished_as, HO_DONE);
    assert_int_equal(f->j.served_at, T0 + 18);
    assert_int_equal(ho_paused_ms(&f->j, T0 + 999), 18);
    tick_to(f, T0 + 100);
    assert_int_equal(f->finishes, 1); /* finished once, and then quiet */
    assert_int_equal(f->probes, 3);
    assert_int_equal(f->resumes, 0);
}

/* ---- giving up ---- */

static void primary_that_does_not_drain_in_time_is_told_to_resume(void **state)
{
    fx *f = *state;
    start(f);
    int64_t give_up = T0 + 2000 - 500;
    while (f->now < give_up - 1) {
        ho_tick(&f->j, ++f->now);
        if (f->j.waiting) status(f, REPL_DRAIN_DRAINING, 50, 40, 40);
    }
    assert_int_equal(f->j.phase, HO_DRAINING);
    ho_tick(&f->j, ++f->now);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_int_equal(f->resumes, 1);
    assert_int_equal(f->writes, 0);
    assert_int_equal(f->finishes, 1);
    assert_non_null(strstr(f->j.why, "did not drain within 1500 ms"));
    assert_non_null(strstr(f->j.why, "committed 40"));
    assert_int_equal(ho_paused_ms(&f->j, T0 + 5000), 1500);
}

static void drained_too_late_writes_nothing(void **state)
{
    fx *f = *state;
    start(f);
    f->now = T0 + 1500; /* the answer arrives just at deadline - margin */
    status(f, REPL_DRAIN_DRAINED, 50, 50, 50);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_int_equal(f->writes, 0);
    assert_int_equal(f->resumes, 1);
    assert_non_null(strstr(f->j.why, "too late"));
}

static void lost_swap_or_etcd_failure_resumes_the_primary(void **state)
{
    fx *f = *state;
    f->write_rc = 0; /* someone else's change won */
    start(f);
    f->now += 3;
    status(f, REPL_DRAIN_DRAINED, 50, 50, 50);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_int_equal(f->resumes, 1);
    assert_int_equal(f->pushes, 0);
    assert_false(f->j.outcome_unknown);
    assert_non_null(strstr(f->j.why, "changed meanwhile"));

    f->write_rc = -110;
    f->resumes = f->finishes = f->drains = 0;
    start(f);
    f->now += 3;
    status(f, REPL_DRAIN_DRAINED, 50, 50, 50);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_int_equal(f->resumes, 1);
    assert_true(f->j.outcome_unknown);
    assert_non_null(strstr(f->j.why, "context deadline exceeded"));
    assert_int_equal(f->finishes, 1);
}

static void primary_refusing_or_silent_or_no_longer_draining_fails_at_once(void **state)
{
    fx *f = *state;
    start(f);
    ho_status st = {.ok = false, .msg = "ERR not the primary of shard 4 at configuration 7"};
    ho_drain_reply(&f->j, &st, f->now + 1);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_non_null(strstr(f->j.why, "not the primary"));
    assert_int_equal(f->resumes, 1);

    f->drains = 0;
    start(f);
    st = (ho_status){.ok = false};
    ho_drain_reply(&f->j, &st, f->now + 1);
    assert_non_null(strstr(f->j.why, "no answer"));

    f->drains = 0;
    start(f);
    status(f, REPL_DRAIN_NONE, 50, 50, 50); /* it resumed on its own */
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_non_null(strstr(f->j.why, "no longer handing over"));

    f->drains = 0;
    start(f);
    st = (ho_status){.ok = true, .state = REPL_DRAIN_DRAINED, .version = 8};
    ho_drain_reply(&f->j, &st, f->now + 1);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_non_null(strstr(f->j.why, "configuration 8, not 7"));
    assert_int_equal(f->writes, 0);
}

/* ---- after the write ---- */

static void target_slow_to_serve_is_still_a_success(void **state)
{
    fx *f = *state;
    start(f);
    f->now += 1;
    status(f, REPL_DRAIN_DRAINED, 0, 0, 0); /* an idle shard */
    assert_int_equal(f->j.phase, HO_CONFIRMING);
    while (f->finishes == 0) {
        ho_tick(&f->j, ++f->now);
        if (f->j.waiting) probe(f, 8, REPL_PRIMARY, false);
    }
    assert_int_equal(f->finished_as, HO_DONE);
    assert_int_equal(f->now, T0 + 1 + 2000);
    assert_int_equal(f->j.served_at, 0);
    assert_int_equal(f->resumes, 0);
}

static void abort_while_draining_resumes_after_the_write_completes(void **state)
{
    fx *f = *state;
    start(f);
    ho_abort(&f->j, "this manager is no longer the active one", f->now + 5);
    assert_int_equal(f->j.phase, HO_FAILED);
    assert_int_equal(f->resumes, 1);
    assert_string_equal(f->j.why, "this manager is no longer the active one");

    f->resumes = f->finishes = f->drains = 0;
    start(f);
    status(f, REPL_DRAIN_DRAINED, 9, 9, 9);
    assert_int_equal(f->j.phase, HO_CONFIRMING);
    ho_abort(&f->j, "stopping", f->now + 5);
    assert_int_equal(f->j.phase, HO_DONE); /* written is written */
    assert_int_equal(f->resumes, 0);
    assert_int_equal(f->finishes, 1);
}

static void params_and_names(void **state)
{
    (void)state;
    ho_params p;
    ho_params_init(&p, 2000);
    assert_int_equal(p.margin_ms, 500);
    assert_int_equal(p.poll_ms, 2);
    ho_params_init(&p, 400);
    assert_int_equal(p.margin_ms, 100);
    assert_string_equal(ho_phase_name(HO_CONFIRMING), "confirming");
    assert_string_equal(ho_phase_name((enum ho_phase)99), "?");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(drained_and_caught_up_writes_pushes_and_waits_for_the_target),
        T(primary_that_does_not_drain_in_time_is_told_to_resume),
        T(drained_too_late_writes_nothing),
        T(lost_swap_or_etcd_failure_resumes_the_primary),
        T(primary_refusing_or_silent_or_no_longer_draining_fails_at_once),
        T(target_slow_to_serve_is_still_a_success),
        T(abort_while_draining_resumes_after_the_write_completes),
        T(params_and_names),
    };
    return cmocka_run_group_tests_name("handover", tests, NULL, NULL);
}
