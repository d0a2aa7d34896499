/*
 * election.c — see election.h for the state diagram.
 *
 *   transition                     performed by
 *   STANDBY -> LEADER              campaign() in elect_tick (won)
 *   LEADER  -> STANDBY             renew() in elect_tick (lease gone), elect_resign
 *   acting  -> not acting          time passing the deadline (elect_active)
 */
#include "manager/election.h"

#include <string.h>

#include "lib/err.h"
#include "lib/log.h"

/* After a failed call, wait this long before the next (doubling up to the
 * cap) so an unreachable etcd does not keep the loop blocked in calls. */
#define BACKOFF_MIN_MS 200
#define BACKOFF_MAX_MS 1000

void elect_init(elect *e, const elect_io *io, const elect_params *params)
{
    memset(e, 0, sizeof(*e));
    e->io = *io;
    if (params) e->p = *params;
    if (e->p.ttl_s <= 0) e->p.ttl_s = 2;
    if (e->p.retry_ms <= 0) e->p.retry_ms = 300;
    if (e->p.guard_ms <= 0) e->p.guard_ms = e->p.ttl_s * 1000 / 10;
}

static int64_t backoff(elect *e)
{
    int64_t d = BACKOFF_MIN_MS;
    for (int i = 1; i < e->failures && d < BACKOFF_MAX_MS; i++) d *= 2;
    return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

static void failed(elect *e, const char *what, int rc)
{
    e->failures++;
    if (e->failures == 1 || e->failures % 10 == 0)
        log_warn("election: %s failed: %s (%d in a row)", what, cairn_strerror(rc), e->failures);
    e->next_at = e->io.now(e->io.data) + backoff(e);
}

/* The lease is alive until at least sent + ttl: act until sent + ttl - guard. */
static void lease_alive(elect *e, int64_t sent, int64_t ttl_s)
{
    e->ttl_ms = ttl_s * 1000;
    e->deadline = sent + e->ttl_ms - e->p.guard_ms;
    e->renew_at = sent + e->ttl_ms / 3;
    if (e->lapsed) log_notice("election: lease renewed; acting as the active manager again");
    else if (e->failures) log_notice("election: etcd reachable again");
    e->lapsed = false;
    e->failures = 0;
}

static void lease_lost(elect *e)
{
    if (e->leader) log_warn("election: our lease is gone; no longer the active manager");
    e->leader = false;
    e->lapsed = false;
    e->lease = 0;
    e->deadline = 0;
}

/* Keep the lease alive.  Returns true if it still exists. */
static bool renew(elect *e)
{
    int64_t sent = e->io.now(e->io.data), ttl = 0;
    int rc = e->io.keepalive(e->io.data, e->lease, &ttl);
    if (rc > 0) {
        lease_alive(e, sent, ttl);
        return true;
    }
    if (rc == 0) {
        lease_lost(e);
        e->failures = 0;
        return false;
    }
    failed(e, "lease keepalive", rc);
    if (e->leader && !e->lapsed && e->io.now(e->io.data) >= e->deadline) {
        e->lapsed = true;
        log_warn("election: could not renew the lease in time; not acting until it is");
    }
    return true;
}

static void campaign(elect *e)
{
    int64_t now = e->io.now(e->io.data);
    if (!e->lease) {
        int64_t lease = 0, ttl = 0;
        int rc = e->io.grant(e->io.data, e->p.ttl_s, &lease, &ttl);
        if (rc < 0) {
            failed(e, "lease grant", rc);
            return;
        }
        e->lease = lease;
        lease_alive(e, now, ttl > 0 ? ttl : e->p.ttl_s);
    }
    char holder[ELECT_HOLDER_MAX] = "";
    int rc = e->io.campaign(e->io.data, e->lease, holder, sizeof(holder));
    if (rc < 0) {
        failed(e, "campaign", rc);
        return;
    }
    e->failures = 0;
    if (rc == 1) {
        e->leader = true;
        e->term++;
        e->holder[0] = '\0';
        log_notice("election: won; this manager is now active (lease %llx)",
                   (unsigned long long)e->lease);
        return;
    }
    if (strcmp(holder, e->holder) != 0) log_notice("election: standby; active manager is %s",
                                                   holder[0] ? holder : "unknown");
    memcpy(e->holder, holder, sizeof(holder));
    e->next_at = now + e->p.retry_ms;
}

void elect_tick(elect *e)
{
    int64_t now = e->io.now(e->io.data);
    if (now < e->next_at) return;
    if (e->lease && now >= e->renew_at) {
        if (!renew(e) && !e->leader) {
            /* lease gone: campaign right away with a new one */
        } else if (e->failures) {
            return; /* backing off */
        }
    }
    if (!e->leader && now >= e->next_at) campaign(e);
}

bool elect_active(const elect *e, int64_t now) { return e->leader && now < e->deadline; }

void elect_resign(elect *e)
{
    if (e->lease) {
        int rc = e->io.revoke(e->io.data, e->lease);
        if (rc < 0 && rc != CAIRN_ENOTFOUND)
            log_warn("election: revoking the lease failed: %s", cairn_strerror(rc));
        else if (e->leader)
            log_notice("election: stepped down (lease revoked)");
    }
    e->leader = false;
    e->lease = 0;
    e->deadline = 0;
}
