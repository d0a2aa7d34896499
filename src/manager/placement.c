/*
 * placement.c — see placement.h for the table of requests and results.
 *
 * Every function builds its answer in a local copy and checks it with
 * pl_shard_valid() before handing it out: a decision that would break
 * invariant P (a node twice) or the size limits is a bug here, so it
 * asserts rather than reaching etcd.
 */
#include "manager/placement.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const result_names[] = {
#define PL_RESULT_NAME(name, text) text,
    PL_RESULT_MAP(PL_RESULT_NAME)
#undef PL_RESULT_NAME
};

const char *pl_result_name(pl_result r)
{
    return (unsigned)r < sizeof(result_names) / sizeof(result_names[0]) ? result_names[r] : "?";
}

static pl_result refuse(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static pl_result refuse(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return PL_REFUSED;
}

/* ---- membership ---------------------------------------------------------- */

static bool in_list(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id) return true;
    return false;
}

/* Remove id from v[0..*n) keeping the order; true if it was there. */
static bool list_del(uint64_t *v, size_t *n, uint64_t id)
{
    for (size_t i = 0; i < *n; i++)
        if (v[i] == id) {
            memmove(v + i, v + i + 1, (*n - i - 1) * sizeof(*v));
            (*n)--;
            return true;
        }
    return false;
}

enum repl_role pl_role(const repl_config *cfg, uint64_t id)
{
    if (id == 0 || cfg->version == 0) return REPL_NONE;
    if (cfg->primary == id) return REPL_PRIMARY;
    if (in_list(cfg->secondaries, cfg->nsec, id)) return REPL_SECONDARY;
    if (in_list(cfg->learners, cfg->nlearn, id)) return REPL_LEARNER;
    return REPL_NONE;
}

uint32_t pl_node_shard(const pl_view *v, uint64_t id)
{
    for (size_t i = 0; i < v->nshards; i++)
        if (pl_role(&v->shards[i].cfg, id) != REPL_NONE) return v->shards[i].cfg.shard;
    return 0;
}

const pl_node *pl_node_find(const pl_view *v, uint64_t id)
{
    for (size_t i = 0; i < v->nnodes; i++)
        if (v->nodes[i].id == id) return &v->nodes[i];
    return NULL;
}

bool pl_node_fresh(const pl_view *v, const pl_node *n, int64_t within_ms)
{
    return n && n->seen && v->now - n->last_seen <= within_ms;
}

bool pl_shard_valid(const pl_shard *s)
{
    const repl_config *c = &s->cfg;
    if (c->shard == 0 || c->version == 0 || c->primary == 0) return false;
    if (c->nsec > REPL_MAX_MEMBERS || c->nlearn > REPL_MAX_MEMBERS) return false;
    if (s->replicas < 1) return false;
    uint64_t all[1 + 2 * REPL_MAX_MEMBERS];
    size_t n = 0;
    all[n++] = c->primary;
    for (size_t i = 0; i < c->nsec; i++) all[n++] = c->secondaries[i];
    for (size_t i = 0; i < c->nlearn; i++) all[n++] = c->learners[i];
    for (size_t i = 0; i < n; i++) {
        if (all[i] == 0) return false;
        for (size_t j = i + 1; j < n; j++)
            if (all[i] == all[j]) return false; /* invariant P */
    }
    return true;
}

/* Common prologue of the requests that name a version (invariant 1). */
static pl_result check_version(const pl_shard *cur, uint64_t version, char *err, size_t errlen)
{
    if (version < cur->cfg.version) return PL_CURRENT;
    if (version > cur->cfg.version)
        return refuse(err, errlen,
                      "shard %" PRIu32 " is at version %" PRIu64 ", not %" PRIu64
                      " (newer than the manager's)",
                      cur->cfg.shard, cur->cfg.version, version);
    return PL_CHANGED; /* "go on" */
}

static pl_result changed(const pl_shard *cur, pl_shard *next, pl_shard *out)
{
    next->cfg.version = cur->cfg.version + 1;
    assert(pl_shard_valid(next));
    /* Invariant 5: the primary of the new configuration was a member
     * (primary or secondary) of the last one. */
    assert(next->cfg.primary == cur->cfg.primary ||
           in_list(cur->cfg.secondaries, cur->cfg.nsec, next->cfg.primary));
    *out = *next;
    return PL_CHANGED;
}

/* ---- REMOVE / PROMOTE ----------------------------------------------------- */

pl_result pl_remove(const pl_shard *cur, uint64_t version, uint64_t victim, uint64_t requester,
                    pl_shard *out, char *err, size_t errlen)
{
    pl_result r = check_version(cur, version, err, errlen);
    if (r != PL_CHANGED) return r;
    const repl_config *c = &cur->cfg;
    if (victim == requester)
        return refuse(err, errlen, "a node cannot ask for its own removal");
    enum repl_role rq = pl_role(c, requester), vr = pl_role(c, victim);
    if (rq == REPL_NONE)
        return refuse(err, errlen, "requester %016" PRIx64 " is not a member of shard %" PRIu32,
                      requester, c->shard);
    if (vr == REPL_NONE)
        return refuse(err, errlen, "victim %016" PRIx64 " is not a member of shard %" PRIu32,
                      victim, c->shard);

    pl_shard next = *cur;
    if (rq == REPL_PRIMARY) {
        /* The primary drops a secondary whose lease lapsed (invariant 5) or
         * a learner that cannot keep up. */
        if (!list_del(next.cfg.secondaries, &next.cfg.nsec, victim))
            list_del(next.cfg.learners, &next.cfg.nlearn, victim);
        return changed(cur, &next, out);
    }
    if (rq == REPL_SECONDARY && vr == REPL_PRIMARY) {
        /* Invariant 4: the secondary heard nothing for the grace period,
         * so the old primary's lease has run out; invariant 5: the new
         * primary is a secondary of the last configuration. */
        next.cfg.primary = requester;
        list_del(next.cfg.secondaries, &next.cfg.nsec, requester);
        return changed(cur, &next, out);
    }
    if (rq == REPL_LEARNER)
        return refuse(err, errlen, "a learner (%016" PRIx64 ") cannot ask for removals",
                      requester);
    return refuse(err, errlen,
                  "only the primary may remove a secondary or learner, and only a secondary "
                  "the primary (requester %016" PRIx64 " is a secondary, victim %016" PRIx64
                  " is a %s)",
                  requester, victim, vr == REPL_SECONDARY ? "secondary" : "learner");
}

pl_result pl_promote(const pl_shard *cur, uint64_t version, uint64_t learner, uint64_t requester,
                     pl_shard *out, char *err, size_t errlen)
{
    pl_result r = check_version(cur, version, err, errlen);
    if (r != PL_CHANGED) return r;
    const repl_config *c = &cur->cfg;
    if (requester != c->primary)
        return refuse(err, errlen,
                      "only the primary of shard %" PRIu32 " may promote a learner (%016" PRIx64
                      " is not)",
                      c->shard, requester);
    if (pl_role(c, learner) != REPL_LEARNER)
        return refuse(err, errlen, "%016" PRIx64 " is not a learner of shard %" PRIu32, learner,
                      c->shard);
    if (c->nsec >= REPL_MAX_MEMBERS)
        return refuse(err, errlen, "shard %" PRIu32 " already has %d secondaries", c->shard,
                      REPL_MAX_MEMBERS);
    pl_shard next = *cur;
    list_del(next.cfg.learners, &next.cfg.nlearn, learner);
    next.cfg.secondaries[next.cfg.nsec++] = learner;
    return changed(cur, &next, out);
}

/* ---- choosing spares ------------------------------------------------------ */

static bool zone_used(const char *const *zones, size_t n, const char *zone)
{
    if (!zone[0]) return false; /* no zone given: conflicts with nothing */
    for (size_t i = 0; i < n; i++)
        if (strcmp(zones[i], zone) == 0) return true;
    return false;
}

/* The best spare for a shard whose members use zones[0..nz): fresh, in no
 * shard, not in `taken`, in an unused zone if any such spare exists; lowest
 * id among equals.  NULL when there is no spare at all. */
static const pl_node *pick_spare(const pl_view *v, const char *const *zones, size_t nz,
                                 const uint64_t *taken, size_t ntaken)
{
    const pl_node *best = NULL;
    bool best_new_zone = false;
    for (size_t i = 0; i < v->nnodes; i++) {
        const pl_node *n = &v->nodes[i];
        if (!pl_node_fresh(v, n, PL_SPARE_FRESH_MS)) continue;
        if (pl_node_shard(v, n->id) != 0 || in_list(taken, ntaken, n->id)) continue;
        bool new_zone = !zone_used(zones, nz, n->zone);
        if (!best || (new_zone && !best_new_zone) ||
            (new_zone == best_new_zone && n->id < best->id)) {
            best = n;
            best_new_zone = new_zone;
        }
    }
    return best;
}

static size_t count_spares(const pl_view *v)
{
    size_t k = 0;
    for (size_t i = 0; i < v->nnodes; i++)
        if (pl_node_fresh(v, &v->nodes[i], PL_SPARE_FRESH_MS) &&
            pl_node_shard(v, v->nodes[i].id) == 0)
            k++;
    return k;
}

/* The zones of cfg's members that the view knows, into zones[]. */
static size_t member_zones(const pl_view *v, const repl_config *c, const char **zones)
{
    size_t nz = 0;
    uint64_t ids[1 + 2 * REPL_MAX_MEMBERS];
    size_t n = 0;
    ids[n++] = c->primary;
    for (size_t i = 0; i < c->nsec; i++) ids[n++] = c->secondaries[i];
    for (size_t i = 0; i < c->nlearn; i++) ids[n++] = c->learners[i];
    for (size_t i = 0; i < n; i++) {
        const pl_node *m = pl_node_find(v, ids[i]);
        if (m && m->zone[0]) zones[nz++] = m->zone;
    }
    return nz;
}

pl_result pl_create(const pl_view *v, uint32_t replicas, pl_shard *out, char *err, size_t errlen)
{
    if (replicas < 1 || replicas > REPL_MAX_MEMBERS)
        return refuse(err, errlen, "replicas must be between 1 and %d", REPL_MAX_MEMBERS);
    size_t have = count_spares(v);
    if (have < replicas)
        return refuse(err, errlen, "not enough spare nodes: need %" PRIu32 ", have %zu", replicas,
                      have);
    pl_shard s;
    memset(&s, 0, sizeof(s));
    uint32_t maxn = 0;
    for (size_t i = 0; i < v->nshards; i++)
        if (v->shards[i].cfg.shard > maxn) maxn = v->shards[i].cfg.shard;
    s.cfg.shard = maxn + 1;
    s.cfg.version = 1;
    s.replicas = replicas;

    const char *zones[REPL_MAX_MEMBERS];
    uint64_t taken[REPL_MAX_MEMBERS];
    size_t nz = 0, nt = 0;
    for (uint32_t k = 0; k < replicas; k++) {
        const pl_node *n = pick_spare(v, zones, nz, taken, nt);
        assert(n); /* counted above */
        taken[nt++] = n->id;
        if (n->zone[0]) zones[nz++] = n->zone;
        if (k == 0) s.cfg.primary = n->id;
        else s.cfg.secondaries[s.cfg.nsec++] = n->id;
    }
    assert(pl_shard_valid(&s));
    *out = s;
    return PL_CHANGED;
}

/* ---- SWITCHOVER ----------------------------------------------------------- */

pl_result pl_switchover(const pl_view *v, const pl_shard *cur, uint64_t target, pl_shard *out,
                        char *err, size_t errlen)
{
    const repl_config *c = &cur->cfg;
    if (target == 0) {
        const pl_node *best = NULL;
        for (size_t i = 0; i < c->nsec; i++) {
            const pl_node *n = pl_node_find(v, c->secondaries[i]);
            if (!pl_node_fresh(v, n, PL_UNHEALTHY_MS)) continue;
            if (!best || n->last_lsn > best->last_lsn) best = n;
        }
        if (!best)
            return refuse(err, errlen, "shard %" PRIu32 " has no healthy secondary to switch to",
                          c->shard);
        target = best->id;
    }
    switch (pl_role(c, target)) {
    case REPL_PRIMARY:
        return refuse(err, errlen, "%016" PRIx64 " is already the primary of shard %" PRIu32,
                      target, c->shard);
    case REPL_LEARNER:
        return refuse(err, errlen,
                      "%016" PRIx64 " is a learner of shard %" PRIu32
                      ", not a secondary: it may not hold every committed write",
                      target, c->shard);
    case REPL_NONE:
        return refuse(err, errlen, "%016" PRIx64 " is not a secondary of shard %" PRIu32, target,
                      c->shard);
    case REPL_SECONDARY:
        break;
    }
    if (!pl_node_fresh(v, pl_node_find(v, target), PL_UNHEALTHY_MS))
        return refuse(err, errlen, "%016" PRIx64 " is not healthy (no recent heartbeat)", target);
    pl_shard next = *cur;
    list_del(next.cfg.secondaries, &next.cfg.nsec, target);
    memmove(next.cfg.secondaries + 1, next.cfg.secondaries, next.cfg.nsec * sizeof(uint64_t));
    next.cfg.secondaries[0] = c->primary;
    next.cfg.nsec++;
    next.cfg.primary = target;
    return changed(cur, &next, out);
}

/* ---- a restarted primary ------------------------------------------------ */

pl_result pl_restarted(const pl_shard *cur, uint64_t node, uint64_t reported, pl_shard *out)
{
    if (reported != 0 || cur->cfg.primary != node || cur->cfg.nsec != 0) return PL_NOCHANGE;
    pl_shard next = *cur;
    return changed(cur, &next, out);
}

pl_result pl_all_restarted(const pl_view *v, const pl_shard *cur, pl_shard *out)
{
    const repl_config *c = &cur->cfg;
    uint64_t members[1 + REPL_MAX_MEMBERS];
    size_t nm = 0;
    members[nm++] = c->primary;
    for (size_t i = 0; i < c->nsec; i++) members[nm++] = c->secondaries[i];
    uint64_t best = c->primary, best_lsn = 0;
    for (size_t i = 0; i < nm; i++) {
        const pl_node *n = pl_node_find(v, members[i]);
        if (!n || !n->seen || v->now - n->last_seen > 1000 || n->reported_version != 0 ||
            n->floor < c->version)
            return PL_NOCHANGE;
        if (i == 0 || n->last_lsn > best_lsn) {
            best = members[i];
            best_lsn = n->last_lsn;
        }
    }
    pl_shard next = *cur;
    next.cfg.primary = best;
    next.cfg.nsec = 0;
    for (size_t i = 0; i < nm; i++)
        if (members[i] != best) next.cfg.secondaries[next.cfg.nsec++] = members[i];
    return changed(cur, &next, out);
}

/* ---- periodic repair ------------------------------------------------------ */

pl_result pl_repair(const pl_view *v, const pl_shard *cur, pl_shard *out, char *why,
                    size_t whylen)
{
    const repl_config *c = &cur->cfg;
    for (size_t i = 0; i < c->nlearn; i++) {
        const pl_node *n = pl_node_find(v, c->learners[i]);
        if (n && v->now - n->last_seen <= PL_UNHEALTHY_MS) continue;
        pl_shard next = *cur;
        list_del(next.cfg.learners, &next.cfg.nlearn, c->learners[i]);
        if (why && whylen)
            snprintf(why, whylen, "learner %016" PRIx64 " dropped: %s", c->learners[i],
                     n ? "silent for more than 3 s" : "not registered");
        return changed(cur, &next, out);
    }
    size_t members = 1 + c->nsec + c->nlearn;
    if (members >= cur->replicas || c->nlearn >= REPL_MAX_MEMBERS) return PL_NOCHANGE;
    const char *zones[1 + 2 * REPL_MAX_MEMBERS];
    size_t nz = member_zones(v, c, zones);
    const pl_node *n = pick_spare(v, zones, nz, NULL, 0);
    if (!n) return PL_NOCHANGE;
    pl_shard next = *cur;
    next.cfg.learners[next.cfg.nlearn++] = n->id;
    if (why && whylen)
        snprintf(why, whylen, "spare %016" PRIx64 " added as a learner (%zu of %" PRIu32 " replicas)",
                 n->id, members + 1, cur->replicas);
    return changed(cur, &next, out);
}
