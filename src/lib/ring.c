/*
 * ring.c — the consistent-hash ring.  The definition it implements (point
 * strings, hash, tie-break) is in ring.h; it is frozen, so read that before
 * changing anything here.
 */
#include "lib/ring.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "lib/mem.h"
#include "lib/util.h"

typedef struct ring_point {
    uint64_t hash;
    uint32_t shard;
} ring_point;

struct ring {
    size_t n;         /* points */
    ring_point *pt;   /* sorted by (hash, shard), ascending */
    /* A lookup index: bucket b covers hashes whose top `bits` bits are b;
     * first[b] is the first point with a hash >= b's smallest hash
     * (first[nbuckets] = n).  A lookup searches only inside its bucket,
     * about one point, instead of the whole ring. */
    unsigned bits;
    uint32_t *first;
};

static int point_cmp(const void *a, const void *b)
{
    const ring_point *x = a, *y = b;
    if (x->hash != y->hash) return x->hash < y->hash ? -1 : 1;
    return (x->shard > y->shard) - (x->shard < y->shard);
}

static int u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* True when every id is distinct and none is RING_NONE. */
static bool ids_valid(const ring_shard *shards, size_t n)
{
    if (n == 0) return true;
    uint32_t *ids = cairn_malloc(n * sizeof(*ids));
    for (size_t i = 0; i < n; i++) ids[i] = shards[i].id;
    qsort(ids, n, sizeof(*ids), u32_cmp);
    bool ok = ids[n - 1] != RING_NONE;
    for (size_t i = 1; ok && i < n; i++) ok = ids[i] != ids[i - 1];
    cairn_free(ids);
    return ok;
}

static void build_index(ring_t *r)
{
    r->bits = 1;
    while (r->bits < 16 && ((size_t)1 << r->bits) < r->n) r->bits++;
    size_t nb = (size_t)1 << r->bits;
    r->first = cairn_malloc((nb + 1) * sizeof(*r->first));
    size_t p = 0;
    for (size_t b = 0; b < nb; b++) {
        uint64_t low = (uint64_t)b << (64 - r->bits);
        while (p < r->n && r->pt[p].hash < low) p++;
        r->first[b] = (uint32_t)p;
    }
    r->first[nb] = (uint32_t)r->n;
}

ring_t *ring_create(const ring_shard *shards, size_t n, unsigned vnodes_per_weight)
{
    uint64_t vnodes = vnodes_per_weight ? vnodes_per_weight : RING_VNODES_DEFAULT;
    if (n > 0 && shards == NULL) return NULL;
    if (!ids_valid(shards, n)) return NULL;

    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        /* Checked one shard at a time so the product cannot overflow. */
        if (shards[i].weight > RING_MAX_POINTS / vnodes) return NULL;
        total += shards[i].weight * vnodes;
        if (total > RING_MAX_POINTS) return NULL;
    }

    ring_t *r = cairn_calloc(1, sizeof(*r));
    r->n = (size_t)total;
    r->pt = total ? cairn_malloc(r->n * sizeof(*r->pt)) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t points = shards[i].weight * vnodes;
        char s[2 * 20 + 2];
        size_t idlen = u64_to_str(s, shards[i].id);
        s[idlen] = '-';
        for (uint64_t j = 0; j < points; j++) {
            size_t len = idlen + 1 + u64_to_str(s + idlen + 1, j);
            r->pt[k++] = (ring_point){XXH3_64bits(s, len), shards[i].id};
        }
    }
    if (r->n > 1) qsort(r->pt, r->n, sizeof(*r->pt), point_cmp);
    build_index(r);
    return r;
}

void ring_destroy(ring_t *r)
{
    if (r == NULL) return;
    cairn_free(r->pt);
    cairn_free(r->first);
    cairn_free(r);
}

uint32_t ring_lookup(const ring_t *r, uint64_t h)
{
    if (r == NULL || r->n == 0) return RING_NONE;
    /* Lower bound: the first point whose hash is >= h.  Equal hashes are
     * sorted by shard id, so the first of them — the smallest id — wins. */
    size_t b = (size_t)(h >> (64 - r->bits));
    size_t lo = r->first[b], hi = r->first[b + 1];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->pt[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return r->pt[lo == r->n ? 0 : lo].shard;
}

uint64_t ring_key_hash(const void *key, size_t len)
{
    const char *k = key;
    if (len > 0) {
        const char *open = memchr(k, '{', len);
        if (open != NULL) {
            size_t off = (size_t)(open - k) + 1;
            const char *close = memchr(k + off, '}', len - off);
            if (close != NULL && close > k + off) return XXH3_64bits(k + off, (size_t)(close - (k + off)));
        }
    }
    return XXH3_64bits(len ? key : "", len);
}

size_t ring_points(const ring_t *r)
{
    return r ? r->n : 0;
}
