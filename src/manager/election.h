/*
 * election.h — one active manager among many, through an etcd lease.
 *
 * A pure state machine: the etcd calls and the clock come through elect_io,
 * so tests drive it with a fake etcd and a fake clock
 * (tests/unit/test_manager_election.c); manager.c wires it to lib/etcd.
 *
 *              grant lease, create_if_absent(leader key) won
 *   STANDBY  ------------------------------------------------->  LEADER
 *     ^  campaign every retry_ms (lost: remember the holder)       |
 *     |                                                            | keepalive every ttl/3
 *     +------ keepalive says the lease is gone / elect_resign -----+
 *
 * LEADER is "we hold the key"; ACTIVE (elect_active) is LEADER and the
 * lease surely still alive.  A keepalive sent at time t that etcd answered
 * keeps the lease until at least t + ttl (etcd restarts the TTL when it
 * receives the request, which is after t), so the manager acts only while
 *
 *     now < deadline = t_last_ok_send + ttl - guard
 *
 * When etcd is unreachable the keepalives fail, the deadline passes and the
 * manager stops acting at once — before the lease can expire at etcd and a
 * standby can win (guard absorbs clock-rate differences).  If a later
 * keepalive succeeds the lease never expired (etcd does not renew an
 * expired lease), nobody else can have won, and acting resumes.
 *
 * Every io call may block for up to the etcd timeout; elect_tick makes at
 * most two calls per invocation and backs off after a failure, so a loop
 * that calls it every ~100 ms stays responsive when etcd is down.
 */
#ifndef CAIRN_ELECTION_H
#define CAIRN_ELECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ELECT_HOLDER_MAX 512

typedef struct elect_io {
    void *data;
    /* Monotonic milliseconds. */
    int64_t (*now)(void *data);
    /* Grant a lease of ttl_s: 0 with *lease and *granted_ttl (s), or < 0. */
    int (*grant)(void *data, int64_t ttl_s, int64_t *lease, int64_t *granted_ttl);
    /* Renew: > 0 remaining ttl (s), 0 the lease is gone, < 0 error. */
    int (*keepalive)(void *data, int64_t lease, int64_t *ttl);
    /* Create the leader key with our value on `lease` unless it exists.
     * 1 won (also when the key already carries our lease), 0 lost with the
     * holder's value in holder[holderlen] ("" if none), < 0 error. */
    int (*campaign)(void *data, int64_t lease, char *holder, size_t holderlen);
    /* Revoke the lease (deleting the key).  0 or < 0. */
    int (*revoke)(void *data, int64_t lease);
} elect_io;

typedef struct elect_params {
    int64_t ttl_s;    /* lease TTL asked for; default 2 */
    int64_t retry_ms; /* standby campaign period; default 300 */
    int64_t guard_ms; /* safety margin before the lease's earliest expiry;
                         default ttl/10 */
} elect_params;

typedef struct elect {
    elect_io io;
    elect_params p;
    int64_t lease;       /* 0 = none */
    int64_t ttl_ms;      /* as granted */
    int64_t deadline;    /* the lease lives at least until deadline + guard */
    int64_t renew_at;    /* next keepalive */
    int64_t next_at;     /* next campaign (standby) / retry after a failure */
    bool leader;
    bool lapsed;         /* leader whose deadline passed without a renewal (logged once) */
    uint64_t term;       /* incremented each time leadership is gained */
    int failures;        /* consecutive failed calls (for backoff and logs) */
    char holder[ELECT_HOLDER_MAX]; /* leader key's value when we lost, "" unknown */
} elect;

/* params may be NULL (defaults).  Makes no call. */
void elect_init(elect *e, const elect_io *io, const elect_params *params);

/* Do what is due at io.now(): keep the lease alive, campaign.  Call it
 * often (every ~100 ms); it makes a call only when one is due. */
void elect_tick(elect *e);

/* True while this manager may act as the active one (see the top). */
bool elect_active(const elect *e, int64_t now);

/* Step down: revoke the lease (so a standby takes over at once, not a TTL
 * later) and forget it.  Used on shutdown. */
void elect_resign(elect *e);

#endif
