/*
 * watch.c — the watched-keys map (see watch.h for where it is fed).
 *
 *   n->watch: chained hash table, XXH3 of the key, power-of-two buckets,
 *             grown at load factor 1 (never shrunk; freed at shutdown)
 *   watch_key: one per watched key: the key bytes and its watchers
 *             (client, expired-at-WATCH flag), an array
 *   c->watched: the client's watch_key pointers, so dropping a client's
 *             watches touches only its own keys
 *
 * A key with many watchers costs O(watchers) to drop one of them (a scan of
 * the array), as Redis 7.0's list does.
 */
#include "node/watch.h"

#include <string.h>
#include <xxhash.h>

#include "lib/keyspace.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "node/cmd.h"

typedef struct watcher {
    client_t *c;
    bool expired; /* the key was stored but past its expiry at WATCH */
} watcher;

typedef struct watch_key {
    struct watch_key *next; /* bucket chain */
    uint64_t hash;
    watcher *w;
    size_t nw, capw;
    size_t klen;
    char key[];
} watch_key;

struct watch_map {
    watch_key **buckets;
    size_t nbuckets; /* power of two */
};

static watch_key *find(node_t *n, const char *key, size_t klen, uint64_t h)
{
    watch_map *m = n->watch;
    if (!m) return NULL;
    for (watch_key *k = m->buckets[h & (m->nbuckets - 1)]; k; k = k->next)
        if (k->hash == h && k->klen == klen && memcmp(k->key, key, klen) == 0) return k;
    return NULL;
}

static void grow(watch_map *m)
{
    size_t nb = m->nbuckets * 2;
    watch_key **b = cairn_calloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nbuckets; i++) {
        for (watch_key *k = m->buckets[i], *next; k; k = next) {
            next = k->next;
            k->next = b[k->hash & (nb - 1)];
            b[k->hash & (nb - 1)] = k;
        }
    }
    cairn_free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
}

/* Is the key stored but past its expiry?  (Raw clock check: also on a
 * secondary, where db_expired() never says yes while applying.) */
static bool stored_expired(node_t *n, const char *key, size_t klen)
{
    ks_ent_t *e = ks_find(n->ks, key, klen);
    if (!e) return false;
    int64_t at = ks_ent_expire(e);
    return at != KS_NO_EXPIRE && at <= clock_ms();
}

void watch_add(node_t *n, client_t *c, const char *key, size_t klen)
{
    uint64_t h = XXH3_64bits(key, klen);
    watch_key *k = find(n, key, klen, h);
    if (k) {
        for (size_t i = 0; i < k->nw; i++)
            if (k->w[i].c == c) return;
    } else {
        if (!n->watch) {
            n->watch = cairn_calloc(1, sizeof(*n->watch));
            n->watch->nbuckets = 16;
            n->watch->buckets = cairn_calloc(16, sizeof(watch_key *));
        }
        watch_map *m = n->watch;
        if (n->watched_keys >= m->nbuckets) grow(m);
        k = cairn_calloc(1, sizeof(*k) + klen);
        k->hash = h;
        k->klen = klen;
        memcpy(k->key, key, klen);
        k->next = m->buckets[h & (m->nbuckets - 1)];
        m->buckets[h & (m->nbuckets - 1)] = k;
        n->watched_keys++;
    }
    if (k->nw == k->capw) {
        k->capw = k->capw ? k->capw * 2 : 2;
        k->w = cairn_realloc(k->w, k->capw * sizeof(*k->w));
    }
    k->w[k->nw++] = (watcher){c, stored_expired(n, key, klen)};
    if (c->nwatched == c->capwatched) {
        c->capwatched = c->capwatched ? c->capwatched * 2 : 4;
        c->watched = cairn_realloc(c->watched, c->capwatched * sizeof(*c->watched));
    }
    c->watched[c->nwatched++] = k;
}

static void unlink_key(node_t *n, watch_key *k)
{
    watch_map *m = n->watch;
    watch_key **pp = &m->buckets[k->hash & (m->nbuckets - 1)];
    while (*pp != k) pp = &(*pp)->next;
    *pp = k->next;
    cairn_free(k->w);
    cairn_free(k);
    n->watched_keys--;
}

void watch_drop_client(node_t *n, client_t *c)
{
    for (size_t i = 0; i < c->nwatched; i++) {
        watch_key *k = c->watched[i];
        for (size_t j = 0; j < k->nw; j++) {
            if (k->w[j].c == c) {
                k->w[j] = k->w[--k->nw];
                break;
            }
        }
        if (k->nw == 0) unlink_key(n, k);
    }
    cairn_free(c->watched);
    c->watched = NULL;
    c->nwatched = c->capwatched = 0;
}

/* One watched key changed (`is_del`: by DEL; `flush`: by FLUSHALL, before
 * the keyspace is emptied).  Deleting a key that is stored but past its
 * time (expiry), or flushing it, is no change for a watcher that saw the
 * key expired already at WATCH. */
static void touch_key(node_t *n, const char *key, size_t klen, bool is_del, bool flush)
{
    watch_key *k = find(n, key, klen, XXH3_64bits(key, klen));
    if (!k) return;
    bool stored = true, gone_expired = false;
    if (flush) {
        stored = ks_find(n->ks, key, klen) != NULL;
        gone_expired = true;
    } else if (is_del) {
        gone_expired = stored_expired(n, key, klen);
    }
    if (!stored) return; /* FLUSHALL of a key that did not exist: no change */
    for (size_t i = 0; i < k->nw; i++) {
        if (k->w[i].expired) {
            k->w[i].expired = false; /* from now on it is absent, not expired */
            if (gone_expired) continue;
        }
        k->w[i].c->flags |= CLIENT_DIRTY_CAS;
    }
}

static void touch_flush(node_t *n)
{
    watch_map *m = n->watch;
    for (size_t b = 0; b < m->nbuckets; b++)
        for (watch_key *k = m->buckets[b]; k; k = k->next) touch_key(n, k->key, k->klen, false, true);
}

void watch_touch_logged(node_t *n, size_t argc, const resp_arg *argv)
{
    if (argc == 0 || !n->watch) return;
    const cmd_def *d = cmd_lookup(argv[0].p, argv[0].len);
    if (!d) return;
    if (d->fn == cmd_flushall) {
        touch_flush(n);
        return;
    }
    if (d->first <= 0) return;
    bool is_del = d->fn == cmd_del;
    size_t last = d->last < 0 ? argc + (size_t)(long)d->last : (size_t)d->last;
    for (size_t i = (size_t)d->first; i <= last && i < argc; i += (size_t)d->step)
        touch_key(n, argv[i].p, argv[i].len, is_del, false);
}

void watch_touch_all(node_t *n)
{
    watch_map *m = n->watch;
    if (!m) return;
    for (size_t b = 0; b < m->nbuckets; b++)
        for (watch_key *k = m->buckets[b]; k; k = k->next)
            for (size_t i = 0; i < k->nw; i++) k->w[i].c->flags |= CLIENT_DIRTY_CAS;
}

bool watch_exec_expired(node_t *n, client_t *c)
{
    for (size_t i = 0; i < c->nwatched; i++) {
        watch_key *k = c->watched[i];
        for (size_t j = 0; j < k->nw; j++)
            if (k->w[j].c == c && !k->w[j].expired && stored_expired(n, k->key, k->klen))
                return true;
    }
    return false;
}

void watch_destroy(node_t *n)
{
    watch_map *m = n->watch;
    if (!m) return;
    for (size_t b = 0; b < m->nbuckets; b++) {
        for (watch_key *k = m->buckets[b], *next; k; k = next) {
            next = k->next;
            cairn_free(k->w);
            cairn_free(k);
        }
    }
    cairn_free(m->buckets);
    cairn_free(m);
    n->watch = NULL;
    n->watched_keys = 0;
}
