/*
 * test_manager_election.c — src/manager/election.c against a fake etcd and
 * a fake clock.
 *
 * The fake keeps leases (expiring on the fake clock) and the leader key
 * (deleted with its lease), and can cut one client off ("partitioned":
 * each call then costs the client's timeout and fails).  Every call moves
 * the clock forward, as a real call takes time.
 *
 * Covers: winning an empty key; standing by behind a holder and learning
 * its value; taking over after the holder's lease expires (within TTL +
 * retry); keepalive cadence; the safety property — a manager cut off from
 * etcd stops acting before its lease can expire, so two managers never
 * act at once — checked at every step; resuming without a new term when
 * the lease survived; a new term after it did not; resigning hands over at
 * once; backoff keeps a cut-off manager from spending its time in calls.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/log.h"
#include "manager/election.h"

#define TIMEOUT_MS 500
#define CALL_MS 2

typedef struct fake_lease {
    int64_t id;
    int64_t expires;
    int64_t ttl_s;
    int alive;
} fake_lease;

typedef struct fake_etcd {
    int64_t now;
    fake_lease leases[64];
    int nleases;
    int64_t next_id;
    int key_exists;
    int64_t key_lease;
    char key_val[64];
} fake_etcd;

typedef struct client {
    fake_etcd *etcd;
    elect el;
    char val[64];
    int partitioned;
    int dead; /* crashed: no longer ticked */
    int calls;
} client;

static void expire(fake_etcd *f)
{
    for (int i = 0; i < f->nleases; i++) {
        fake_lease *l = &f->leases[i];
        if (l->alive && f->now >= l->expires) {
            l->alive = 0;
            if (f->key_exists && f->key_lease == l->id) f->key_exists = 0;
        }
    }
}

static fake_lease *find(fake_etcd *f, int64_t id)
{
    for (int i = 0; i < f->nleases; i++)
        if (f->leases[i].id == id && f->leases[i].alive) return &f->leases[i];
    return NULL;
}

/* Prologue of every call: time passes; a cut-off client waits its timeout. */
static int begin(client *c)
{
    c->calls++;
    if (c->partitioned) {
        c->etcd->now += TIMEOUT_MS;
        expire(c->etcd);
        return -ETIMEDOUT;
    }
    expire(c->etcd);
    return 0;
}

static void end(client *c)
{
    c->etcd->now += CALL_MS;
    expire(c->etcd);
}

static int64_t io_now(void *d) { return ((client *)d)->etcd->now; }

static int io_grant(void *d, int64_t ttl, int64_t *lease, int64_t *granted)
{
    client *c = d;
    int rc = begin(c);
    if (rc < 0) return rc;
    fake_etcd *f = c->etcd;
    fake_lease *l = &f->leases[f->nleases++];
    *l = (fake_lease){++f->next_id, f->now + ttl * 1000, ttl, 1};
    *lease = l->id;
    *granted = ttl;
    end(c);
    return 0;
}

static int io_keepalive(void *d, int64_t lease, int64_t *ttl)
{
    client *c = d;
    int rc = begin(c);
    if (rc < 0) return rc;
    fake_lease *l = find(c->etcd, lease);
    if (l) {
        l->expires = c->etcd->now + l->ttl_s * 1000;
        *ttl = l->ttl_s;
    }
    end(c);
    return l ? (int)l->ttl_s : 0;
}

static int io_campaign(void *d, int64_t lease, char *holder, size_t holderlen)
{
    client *c = d;
    int rc = begin(c);
    if (rc < 0) return rc;
    fake_etcd *f = c->etcd;
    if (!f->key_exists && find(f, lease)) {
        f->key_exists = 1;
        f->key_lease = lease;
        snprintf(f->key_val, sizeof(f->key_val), "%s", c->val);
        rc = 1;
    } else if (f->key_exists && f->key_lease == lease) {
        rc = 1;
    } else {
        snprintf(holder, holderlen, "%s", f->key_exists ? f->key_val : "");
        rc = 0;
    }
    end(c);
    return rc;
}

static int io_revoke(void *d, int64_t lease)
{
    client *c = d;
    int rc = begin(c);
    if (rc < 0) return rc;
    fake_lease *l = find(c->etcd, lease);
    if (l) {
        l->alive = 0;
        if (c->etcd->key_exists && c->etcd->key_lease == lease) c->etcd->key_exists = 0;
    }
    end(c);
    return 0;
}

typedef struct fx {
    fake_etcd etcd;
    client a, b;
} fx;

static void client_init(fx *f, client *c, const char *val)
{
    c->etcd = &f->etcd;
    snprintf(c->val, sizeof(c->val), "%s", val);
    elect_io io = {c, io_now, io_grant, io_keepalive, io_campaign, io_revoke};
    elect_params p = {.ttl_s = 2};
    elect_init(&c->el, &io, &p);
}

static int setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    f->etcd.now = 1000000;
    client_init(f, &f->a, "A");
    client_init(f, &f->b, "B");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    test_free(*state);
    return 0;
}

/* The safety property, checked at every step: nobody acts unless its lease
 * is alive at etcd, so two managers never act at once. */
static void check_safety(fx *f)
{
    int64_t now = f->etcd.now;
    client *cs[] = {&f->a, &f->b};
    int acting = 0;
    for (int i = 0; i < 2; i++) {
        if (!elect_active(&cs[i]->el, now)) continue;
        acting++;
        fake_lease *l = find(&f->etcd, cs[i]->el.lease);
        if (!l || l->expires <= now) fail_msg("%s acts at %lld without a live lease", cs[i]->val, (long long)now);
        if (!(f->etcd.key_exists && f->etcd.key_lease == cs[i]->el.lease))
            fail_msg("%s acts without holding the key", cs[i]->val);
    }
    assert_true(acting <= 1);
}

/* Tick both every 100 ms for `ms` of fake time. */
static void run(fx *f, int64_t ms)
{
    int64_t until = f->etcd.now + ms;
    while (f->etcd.now < until) {
        if (!f->a.dead) elect_tick(&f->a.el);
        check_safety(f);
        if (!f->b.dead) elect_tick(&f->b.el);
        check_safety(f);
        f->etcd.now += 100;
        expire(&f->etcd);
        check_safety(f);
    }
}

/* Time until pred holds (ticking both), or -1 after `limit` ms. */
static int64_t time_until(fx *f, int (*pred)(fx *), int64_t limit)
{
    int64_t start = f->etcd.now;
    while (f->etcd.now - start <= limit) {
        if (pred(f)) return f->etcd.now - start;
        run(f, 100);
    }
    return -1;
}

static int b_active(fx *f) { return elect_active(&f->b.el, f->etcd.now); }
static int a_inactive(fx *f) { return !elect_active(&f->a.el, f->etcd.now); }
static int a_active(fx *f) { return elect_active(&f->a.el, f->etcd.now); }

static void first_campaign_wins_empty_key(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    assert_true(f->a.el.leader);
    assert_true(elect_active(&f->a.el, f->etcd.now));
    assert_int_equal(f->a.el.term, 1);
    assert_string_equal(f->etcd.key_val, "A");
}

static void standby_learns_holder(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 1000);
    assert_true(elect_active(&f->a.el, f->etcd.now));
    assert_false(f->b.el.leader);
    assert_false(elect_active(&f->b.el, f->etcd.now));
    assert_string_equal(f->b.el.holder, "A");
}

static void leader_keeps_lease_with_keepalives_every_third_of_ttl(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    int before = f->a.calls;
    run(f, 10000);
    assert_true(elect_active(&f->a.el, f->etcd.now));
    int calls = f->a.calls - before; /* keepalives only: ~10 s / (2 s / 3) */
    assert_in_range(calls, 13, 17);
    assert_int_equal(f->a.el.term, 1);
}

static void standby_takes_over_after_holder_dies(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 1000);
    f->a.dead = 1; /* kill -9: its lease expires on its own */
    int64_t took = time_until(f, b_active, 5000);
    assert_true(took >= 0);
    /* lease TTL 2 s from A's last keepalive, then at most one 300 ms retry
     * plus the ticks */
    assert_true(took <= 2000 + 300 + 200);
    assert_int_equal(f->b.el.term, 1);
    assert_string_equal(f->etcd.key_val, "B");
}

static void cut_off_leader_stops_acting_before_lease_expires(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 700);
    f->a.partitioned = 1;
    /* check_safety() runs at every step inside time_until: A never acts
     * once its lease could be gone, and B never acts while A does. */
    int64_t stop = time_until(f, a_inactive, 3000);
    assert_true(stop >= 0 && stop <= 2000);
    assert_true(f->a.el.leader); /* it still believes it holds the key... */
    assert_false(elect_active(&f->a.el, f->etcd.now)); /* ...but does not act */
    assert_true(time_until(f, b_active, 3000) >= 0);
}

static void short_outage_resumes_same_term(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 1000);
    /* A's keepalives stop getting through; time reaches its deadline */
    f->etcd.now = f->a.el.deadline;
    expire(&f->etcd);
    assert_false(elect_active(&f->a.el, f->etcd.now));
    /* the guard: the lease is still alive at etcd when A stops acting */
    fake_lease *l = find(&f->etcd, f->a.el.lease);
    assert_non_null(l);
    assert_true(l->expires - f->etcd.now >= 2000 / 10);
    /* etcd answers again before the lease expired: nobody else could have
     * won, so A acts again in the same term */
    elect_tick(&f->a.el);
    assert_true(elect_active(&f->a.el, f->etcd.now));
    assert_int_equal(f->a.el.term, 1);
}

static void long_outage_starts_a_new_term(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 1000);
    f->b.partitioned = 1;
    f->a.partitioned = 1;
    run(f, 4000); /* the lease expires at etcd meanwhile */
    assert_false(f->etcd.key_exists);
    f->a.partitioned = 0;
    assert_true(time_until(f, a_active, 3000) >= 0);
    assert_int_equal(f->a.el.term, 2);
}

static void resign_hands_over_at_once(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    run(f, 1000);
    elect_resign(&f->a.el);
    assert_false(f->a.el.leader);
    assert_false(f->etcd.key_exists);
    /* B wins on its next campaign, well before a TTL */
    f->a.dead = 1; /* A has exited */
    int64_t took = time_until(f, b_active, 3000);
    assert_true(took >= 0 && took <= 400);
}

static void cut_off_standby_backs_off(void **state)
{
    fx *f = *state;
    elect_tick(&f->a.el);
    f->b.partitioned = 1;
    int before = f->b.calls;
    int64_t start = f->etcd.now;
    run(f, 10000);
    int64_t elapsed = f->etcd.now - start;
    int calls = f->b.calls - before;
    /* each failed call costs 500 ms; with backoff B spends well under
     * two thirds of its time blocked */
    assert_true((int64_t)calls * TIMEOUT_MS < elapsed * 2 / 3);
    assert_false(f->b.el.leader);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR + 1); /* the state machine's notes are not the test's output */
    const struct CMUnitTest tests[] = {
        T(first_campaign_wins_empty_key),
        T(standby_learns_holder),
        T(leader_keeps_lease_with_keepalives_every_third_of_ttl),
        T(standby_takes_over_after_holder_dies),
        T(cut_off_leader_stops_acting_before_lease_expires),
        T(short_outage_resumes_same_term),
        T(long_outage_starts_a_new_term),
        T(resign_hands_over_at_once),
        T(cut_off_standby_backs_off),
    };
    return cmocka_run_group_tests_name("manager_election", tests, NULL, NULL);
}
