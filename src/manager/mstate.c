/*
 * mstate.c — see mstate.h.  Linear scans: a cluster has tens to a few
 * hundred nodes and the busiest path (a heartbeat) touches one row.
 */
#include "manager/mstate.h"

#include <string.h>

#include "lib/mem.h"

void mstate_init(mstate *st) { memset(st, 0, sizeof(*st)); }

void mstate_close(mstate *st)
{
    cairn_free(st->nodes);
    cairn_free(st->shards);
    cairn_free(st->vnodes);
    cairn_free(st->vshards);
    memset(st, 0, sizeof(*st));
}

void mstate_clear(mstate *st)
{
    st->nnodes = 0;
    st->nshards = 0;
}

mstate_node *mstate_node_find(mstate *st, uint64_t id)
{
    for (size_t i = 0; i < st->nnodes; i++)
        if (st->nodes[i].info.id == id) return &st->nodes[i];
    return NULL;
}

mstate_node *mstate_node_find_addr(mstate *st, const char *addr)
{
    for (size_t i = 0; i < st->nnodes; i++)
        if (strcmp(st->nodes[i].info.addr, addr) == 0) return &st->nodes[i];
    return NULL;
}

mstate_node *mstate_node_lookup(mstate *st, const char *s, size_t n)
{
    uint64_t id;
    if (mjson_id_parse(s, n, &id)) {
        mstate_node *r = mstate_node_find(st, id);
        if (r) return r;
    }
    char addr[MJSON_ADDR_MAX];
    if (n >= sizeof(addr) || memchr(s, '\0', n)) return NULL;
    memcpy(addr, s, n);
    addr[n] = '\0';
    return mstate_node_find_addr(st, addr);
}

static mstate_node *node_add(mstate *st, const mjson_node *info, int64_t now)
{
    if (st->nnodes == st->capnodes) {
        st->capnodes = st->capnodes ? st->capnodes * 2 : 16;
        st->nodes = cairn_realloc(st->nodes, st->capnodes * sizeof(*st->nodes));
    }
    mstate_node *n = &st->nodes[st->nnodes++];
    memset(n, 0, sizeof(*n));
    n->info = *info;
    n->last_seen = now;
    return n;
}

mstate_node *mstate_node_put(mstate *st, const mjson_node *info, int64_t mod_rev, int64_t now)
{
    mstate_node *n = mstate_node_find(st, info->id);
    if (!n) n = node_add(st, info, now);
    n->info = *info;
    n->mod_rev = mod_rev;
    n->stored = true;
    return n;
}

mstate_node *mstate_heartbeat(mstate *st, const mjson_heartbeat *hb, int64_t now,
                              bool *must_store)
{
    mstate_node *n = mstate_node_find(st, hb->node.id);
    if (!n) {
        n = node_add(st, &hb->node, now);
        if (!hb->has_weight) n->info.weight = 1;
        n->stored = false;
    } else if (strcmp(n->info.addr, hb->node.addr) != 0 ||
               strcmp(n->info.zone, hb->node.zone) != 0) {
        memcpy(n->info.addr, hb->node.addr, sizeof(n->info.addr));
        memcpy(n->info.zone, hb->node.zone, sizeof(n->info.zone));
        n->stored = false;
    }
    n->seen = true;
    n->last_seen = now;
    n->shard = hb->shard;
    n->version = hb->version;
    n->role = hb->role;
    n->last_lsn = hb->last_lsn;
    n->floor = hb->floor;
    n->can_drain = hb->can_drain;
    n->durable_lsn = hb->durable_lsn;
    n->commit_lsn = hb->commit_lsn;
    *must_store = !n->stored;
    return n;
}

void mstate_reset_health(mstate *st, int64_t now)
{
    for (size_t i = 0; i < st->nnodes; i++) {
        st->nodes[i].seen = false;
        st->nodes[i].last_seen = now;
    }
}

bool mstate_node_healthy(const mstate_node *n, int64_t now)
{
    return n->seen && now - n->last_seen <= PL_UNHEALTHY_MS;
}

mstate_shard *mstate_shard_find(mstate *st, uint32_t shard)
{
    for (size_t i = 0; i < st->nshards; i++)
        if (st->shards[i].s.cfg.shard == shard) return &st->shards[i];
    return NULL;
}

mstate_shard *mstate_shard_put(mstate *st, const pl_shard *s, int64_t mod_rev)
{
    mstate_shard *r = mstate_shard_find(st, s->cfg.shard);
    if (!r) {
        if (st->nshards == st->capshards) {
            st->capshards = st->capshards ? st->capshards * 2 : 16;
            st->shards = cairn_realloc(st->shards, st->capshards * sizeof(*st->shards));
        }
        size_t i = st->nshards;
        while (i > 0 && st->shards[i - 1].s.cfg.shard > s->cfg.shard) i--;
        memmove(&st->shards[i + 1], &st->shards[i], (st->nshards - i) * sizeof(*st->shards));
        st->nshards++;
        r = &st->shards[i];
        memset(r, 0, sizeof(*r)); /* the slot held a moved row's bytes (or none) */
    }
    r->s = *s;
    r->mod_rev = mod_rev;
    return r;
}

mstate_shard *mstate_shard_of(mstate *st, uint64_t id)
{
    for (size_t i = 0; i < st->nshards; i++)
        if (pl_role(&st->shards[i].s.cfg, id) != REPL_NONE) return &st->shards[i];
    return NULL;
}

void mstate_view(mstate *st, int64_t now, pl_view *v)
{
    cairn_free(st->vnodes);
    cairn_free(st->vshards);
    st->vnodes = cairn_malloc((st->nnodes + 1) * sizeof(*st->vnodes));
    st->vshards = cairn_malloc((st->nshards + 1) * sizeof(*st->vshards));
    for (size_t i = 0; i < st->nnodes; i++) {
        const mstate_node *n = &st->nodes[i];
        st->vnodes[i] = (pl_node){
            .id = n->info.id,
            .zone = n->info.zone,
            .weight = n->info.weight,
            .seen = n->seen,
            .last_seen = n->last_seen,
            .last_lsn = n->last_lsn,
            .reported_version = n->version,
            .floor = n->floor,
        };
    }
    for (size_t i = 0; i < st->nshards; i++) st->vshards[i] = st->shards[i].s;
    *v = (pl_view){st->vshards, st->nshards, st->vnodes, st->nnodes, now};
}

int64_t mstate_revision(const mstate *st)
{
    int64_t r = 0;
    for (size_t i = 0; i < st->nnodes; i++)
        if (st->nodes[i].mod_rev > r) r = st->nodes[i].mod_rev;
    for (size_t i = 0; i < st->nshards; i++)
        if (st->shards[i].mod_rev > r) r = st->shards[i].mod_rev;
    return r;
}

/* ---- JSON ----------------------------------------------------------------- */

static void add_addr(mstate *st, json_t *addrs, uint64_t id)
{
    const mstate_node *n = mstate_node_find(st, id);
    if (!n) return;
    char s[MJSON_ID_LEN + 1];
    mjson_id_fmt(id, s);
    json_object_set_new(addrs, s, json_string(n->info.addr));
}

json_t *mstate_config_json(mstate *st, const pl_shard *s)
{
    json_t *o = mjson_shard_encode(s);
    json_t *addrs = json_object();
    add_addr(st, addrs, s->cfg.primary);
    for (size_t i = 0; i < s->cfg.nsec; i++) add_addr(st, addrs, s->cfg.secondaries[i]);
    for (size_t i = 0; i < s->cfg.nlearn; i++) add_addr(st, addrs, s->cfg.learners[i]);
    json_object_set_new(o, "addrs", addrs);
    return o;
}

static void add_lag(mstate *st, json_t *lag, uint64_t primary_lsn, bool primary_known,
                    uint64_t id)
{
    const mstate_node *n = mstate_node_find(st, id);
    char s[MJSON_ID_LEN + 1];
    mjson_id_fmt(id, s);
    if (!primary_known || !n || !n->seen) {
        json_object_set_new(lag, s, json_null());
        return;
    }
    uint64_t l = primary_lsn > n->last_lsn ? primary_lsn - n->last_lsn : 0;
    json_object_set_new(lag, s, json_integer((json_int_t)l));
}

json_t *mstate_status_json(mstate *st, int64_t now, json_t *manager)
{
    json_t *o = json_object();
    json_object_set_new(o, "manager", manager);
    json_t *nodes = json_array();
    for (size_t i = 0; i < st->nnodes; i++) {
        const mstate_node *n = &st->nodes[i];
        json_t *j = mjson_node_encode(&n->info);
        const mstate_shard *sh = mstate_shard_of(st, n->info.id);
        json_object_set_new(j, "healthy", json_boolean(mstate_node_healthy(n, now)));
        json_object_set_new(j, "last_seen_ms_ago",
                            n->seen ? json_integer(now - n->last_seen) : json_null());
        json_object_set_new(j, "shard", json_integer(sh ? sh->s.cfg.shard : 0));
        json_object_set_new(j, "role",
                            json_string(mjson_role_name(sh ? pl_role(&sh->s.cfg, n->info.id)
                                                           : REPL_NONE)));
        json_object_set_new(j, "version", json_integer((json_int_t)n->version));
        json_object_set_new(j, "reported_role", json_string(mjson_role_name(n->role)));
        json_object_set_new(j, "last_lsn", json_integer((json_int_t)n->last_lsn));
        json_object_set_new(j, "durable_lsn", json_integer((json_int_t)n->durable_lsn));
        json_object_set_new(j, "commit_lsn", json_integer((json_int_t)n->commit_lsn));
        json_array_append_new(nodes, j);
    }
    json_object_set_new(o, "nodes", nodes);
    json_t *shards = json_array();
    for (size_t i = 0; i < st->nshards; i++) {
        const pl_shard *s = &st->shards[i].s;
        json_t *j = mstate_config_json(st, s);
        const mstate_node *p = mstate_node_find(st, s->cfg.primary);
        bool pk = p && p->seen;
        uint64_t plsn = pk ? p->last_lsn : 0;
        json_t *lag = json_object();
        for (size_t k = 0; k < s->cfg.nsec; k++) add_lag(st, lag, plsn, pk, s->cfg.secondaries[k]);
        for (size_t k = 0; k < s->cfg.nlearn; k++) add_lag(st, lag, plsn, pk, s->cfg.learners[k]);
        json_object_set_new(j, "lag", lag);
        json_array_append_new(shards, j);
    }
    json_object_set_new(o, "shards", shards);
    return o;
}

json_t *mstate_topology_json(mstate *st, int64_t now)
{
    json_t *o = json_object();
    json_object_set_new(o, "version", json_integer(mstate_revision(st)));
    json_t *shards = json_array();
    for (size_t i = 0; i < st->nshards; i++)
        json_array_append_new(shards, mstate_config_json(st, &st->shards[i].s));
    json_object_set_new(o, "shards", shards);
    json_t *nodes = json_array();
    for (size_t i = 0; i < st->nnodes; i++) {
        const mstate_node *n = &st->nodes[i];
        char s[MJSON_ID_LEN + 1];
        mjson_id_fmt(n->info.id, s);
        json_t *j = json_object();
        json_object_set_new(j, "id", json_string(s));
        json_object_set_new(j, "addr", json_string(n->info.addr));
        json_object_set_new(j, "weight", json_integer(n->info.weight));
        json_object_set_new(j, "healthy", json_boolean(mstate_node_healthy(n, now)));
        json_array_append_new(nodes, j);
    }
    json_object_set_new(o, "nodes", nodes);
    return o;
}
