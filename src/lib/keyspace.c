/*
 * keyspace.c — keys, hash fields, and the table that holds both.
 *
 * Entry layout (one allocation; `data` is byte-aligned, read with memcpy):
 *
 *   | next (8) | klen (4) | vlen (4) | type (1) | flags (1) | data ...
 *   data = [expire_at (8) exp_slot (4)]?  key[klen]  value[vlen]
 *
 * The bracketed part is present only with KS_F_EXPIRE.  A string value is
 * stored inline; a hash value is a hobj_t* (vlen = sizeof pointer).  Hash
 * fields reuse the same entry with the field as key and its value inline.
 *
 * The table (struct tab) is chained with two arrays during an incremental
 * rehash, as Redis's dict: every lookup/insert/delete moves one bucket, and
 * the node's timer moves more while idle, so no call does O(n) work.
 */
#include "lib/keyspace.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "lib/mem.h"

#define KS_F_EXPIRE 1
#define EXP_HDR 12 /* expire_at (8) + exp_slot (4) */

struct ks_ent {
    struct ks_ent *next;
    uint32_t klen;
    uint32_t vlen;
    uint8_t type;
    uint8_t flags;
    char data[];
};

#define ENT_HDR offsetof(struct ks_ent, data)

typedef struct tab {
    ks_ent_t **t[2];
    size_t size[2]; /* power of two, or 0 */
    size_t used[2];
    ssize_t rehashidx; /* -1 when not rehashing */
    size_t max_work;   /* most buckets visited by one operation's rehash step */
} tab;

struct hobj {
    tab t;
};

struct ks {
    tab t;
    ks_ent_t **exp; /* entries with an expiry, dense */
    size_t nexp, capexp;
};

/* ---- entry accessors ---- */

static size_t ent_prefix(const ks_ent_t *e) { return (e->flags & KS_F_EXPIRE) ? EXP_HDR : 0; }
static char *ent_key(const ks_ent_t *e) { return (char *)e->data + ent_prefix(e); }
static char *ent_val(const ks_ent_t *e) { return ent_key(e) + e->klen; }

static uint32_t ent_slot(const ks_ent_t *e)
{
    uint32_t s;
    memcpy(&s, e->data + 8, 4);
    return s;
}
static void ent_set_slot(ks_ent_t *e, uint32_t s) { memcpy(e->data + 8, &s, 4); }

static ks_ent_t *ent_new(const char *k, size_t klen, size_t vlen, bool expire)
{
    size_t pre = expire ? EXP_HDR : 0;
    ks_ent_t *e = cairn_malloc(ENT_HDR + pre + klen + vlen);
    e->next = NULL;
    e->klen = (uint32_t)klen;
    e->vlen = (uint32_t)vlen;
    e->type = 0;
    e->flags = expire ? KS_F_EXPIRE : 0;
    memcpy(e->data + pre, k, klen);
    return e;
}

/* ---- the table ---- */

static uint64_t seed;

static uint64_t hash_key(const char *k, size_t n)
{
    if (!seed) {
        uint64_t s = 0;
        if (getrandom(&s, sizeof(s), 0) != sizeof(s)) s = (uint64_t)(uintptr_t)&s;
        seed = s | 1;
    }
    return XXH3_64bits_withSeed(k, n, seed);
}

static void tab_init(tab *t)
{
    memset(t, 0, sizeof(*t));
    t->rehashidx = -1;
}

static bool rehashing(const tab *t) { return t->rehashidx != -1; }
static size_t tab_count(const tab *t) { return t->used[0] + t->used[1]; }

/* Move up to n buckets from t[0] to t[1].  Returns buckets visited. */
static size_t tab_rehash(tab *t, size_t n)
{
    size_t visited = 0, empty_budget = n * 10;
    if (!rehashing(t)) return 0;
    while (n-- && t->used[0] != 0) {
        while (t->t[0][t->rehashidx] == NULL) {
            t->rehashidx++;
            visited++;
            if (--empty_budget == 0) return visited;
        }
        ks_ent_t *e = t->t[0][t->rehashidx];
        while (e) {
            ks_ent_t *next = e->next;
            size_t h = hash_key(ent_key(e), e->klen) & (t->size[1] - 1);
            e->next = t->t[1][h];
            t->t[1][h] = e;
            t->used[0]--;
            t->used[1]++;
            e = next;
        }
        t->t[0][t->rehashidx++] = NULL;
        visited++;
    }
    if (t->used[0] == 0) {
        cairn_free(t->t[0]);
        t->t[0] = t->t[1];
        t->size[0] = t->size[1];
        t->used[0] = t->used[1];
        t->t[1] = NULL;
        t->size[1] = t->used[1] = 0;
        t->rehashidx = -1;
    }
    return visited;
}

static void tab_step(tab *t)
{
    if (!rehashing(t)) return;
    size_t w = tab_rehash(t, 1);
    if (w > t->max_work) t->max_work = w;
}

static void tab_resize(tab *t, size_t want)
{
    size_t size = 4;
    while (size < want) size <<= 1;
    if (t->size[0] == 0) {
        t->t[0] = cairn_calloc(size, sizeof(ks_ent_t *));
        t->size[0] = size;
        return;
    }
    if (size == t->size[0]) return;
    t->t[1] = cairn_calloc(size, sizeof(ks_ent_t *));
    t->size[1] = size;
    t->rehashidx = 0;
}

static void tab_maybe_grow(tab *t)
{
    if (rehashing(t)) return;
    if (t->size[0] == 0) tab_resize(t, 4);
    else if (t->used[0] >= t->size[0]) tab_resize(t, t->used[0] * 2);
}

static void tab_maybe_shrink(tab *t)
{
    if (rehashing(t) || t->size[0] <= 4) return;
    if (t->used[0] * 8 < t->size[0]) tab_resize(t, t->used[0] * 2 > 4 ? t->used[0] * 2 : 4);
}

/* The slot pointing at the entry with this key, or NULL. */
static ks_ent_t **tab_ref(tab *t, const char *k, size_t n)
{
    if (tab_count(t) == 0) return NULL;
    tab_step(t);
    uint64_t h = hash_key(k, n);
    for (int i = 0; i < 2; i++) {
        if (t->size[i] == 0) continue;
        ks_ent_t **ref = &t->t[i][h & (t->size[i] - 1)];
        for (; *ref; ref = &(*ref)->next)
            if ((*ref)->klen == n && memcmp(ent_key(*ref), k, n) == 0) return ref;
        if (!rehashing(t)) break;
    }
    return NULL;
}

/* Insert an entry whose key is known to be absent. */
static void tab_add(tab *t, ks_ent_t *e)
{
    tab_maybe_grow(t);
    tab_step(t);
    int i = rehashing(t) ? 1 : 0;
    size_t h = hash_key(ent_key(e), e->klen) & (t->size[i] - 1);
    e->next = t->t[i][h];
    t->t[i][h] = e;
    t->used[i]++;
}

/* Unlink the entry at ref (which came from tab_ref with no change since). */
static void tab_unlink(tab *t, ks_ent_t **ref)
{
    ks_ent_t *e = *ref;
    *ref = e->next;
    /* Which array held it: entries in t[0] live below size[0]. */
    if (t->size[0] && ref >= t->t[0] && ref < t->t[0] + t->size[0]) t->used[0]--;
    else if (t->size[1] && ref >= t->t[1] && ref < t->t[1] + t->size[1]) t->used[1]--;
    else {
        /* ref points into a predecessor's `next`: find the array by rehashing
         * the key. */
        uint64_t h = hash_key(ent_key(e), e->klen);
        if (rehashing(t) && (ssize_t)(h & (t->size[0] - 1)) < t->rehashidx) t->used[1]--;
        else t->used[0]--;
    }
}

static void tab_free(tab *t, void (*free_ent)(ks_ent_t *))
{
    for (int i = 0; i < 2; i++) {
        for (size_t b = 0; b < t->size[i]; b++) {
            ks_ent_t *e = t->t[i][b];
            while (e) {
                ks_ent_t *next = e->next;
                free_ent(e);
                e = next;
            }
        }
        cairn_free(t->t[i]);
    }
    tab_init(t);
}

static uint64_t rev64(uint64_t v)
{
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

/* Reverse-binary cursor scan (Redis's dictScan): every entry present for the
 * whole scan is visited at least once, even across resizes. */
static uint64_t tab_scan(tab *t, uint64_t v, void (*fn)(void *, ks_ent_t *), void *arg)
{
    if (tab_count(t) == 0 || t->size[0] == 0) return 0;
    if (!rehashing(t)) {
        uint64_t m0 = t->size[0] - 1;
        for (ks_ent_t *e = t->t[0][v & m0]; e; e = e->next) fn(arg, e);
        v |= ~m0;
        v = rev64(v);
        v++;
        return rev64(v);
    }
    int s = t->size[0] <= t->size[1] ? 0 : 1, b = 1 - s;
    uint64_t m0 = t->size[s] - 1, m1 = t->size[b] - 1;
    for (ks_ent_t *e = t->t[s][v & m0]; e; e = e->next) fn(arg, e);
    do {
        for (ks_ent_t *e = t->t[b][v & m1]; e; e = e->next) fn(arg, e);
        v |= ~m1;
        v = rev64(v);
        v++;
        v = rev64(v);
    } while (v & (m0 ^ m1));
    return v;
}

static void tab_foreach(tab *t, void (*fn)(void *, ks_ent_t *), void *arg)
{
    for (int i = 0; i < 2; i++)
        for (size_t b = 0; b < t->size[i]; b++)
            for (ks_ent_t *e = t->t[i][b]; e; e = e->next) fn(arg, e);
}

static ks_ent_t *tab_random(tab *t, uint64_t (*rnd)(void))
{
    if (tab_count(t) == 0) return NULL;
    tab_step(t);
    ks_ent_t *head = NULL;
    while (!head) {
        if (rehashing(t)) {
            /* buckets [0, rehashidx) of t[0] are empty */
            size_t span = t->size[0] + t->size[1] - (size_t)t->rehashidx;
            size_t h = (size_t)t->rehashidx + rnd() % span;
            head = h >= t->size[0] ? t->t[1][h - t->size[0]] : t->t[0][h];
        } else {
            head = t->t[0][rnd() & (t->size[0] - 1)];
        }
    }
    size_t len = 0;
    for (ks_ent_t *e = head; e; e = e->next) len++;
    size_t pick = rnd() % len;
    while (pick--) head = head->next;
    return head;
}

/* ---- hash values ---- */

static void free_plain(ks_ent_t *e) { cairn_free(e); }

hobj_t *hobj_create(void)
{
    hobj_t *h = cairn_malloc(sizeof(*h));
    tab_init(&h->t);
    return h;
}

void hobj_destroy(hobj_t *h)
{
    if (!h) return;
    tab_free(&h->t, free_plain);
    cairn_free(h);
}

size_t hobj_len(const hobj_t *h) { return tab_count(&h->t); }

bool hobj_get(hobj_t *h, const char *f, size_t flen, const char **v, size_t *vlen)
{
    ks_ent_t **ref = tab_ref(&h->t, f, flen);
    if (!ref) return false;
    *v = ent_val(*ref);
    *vlen = (*ref)->vlen;
    return true;
}

int hobj_set(hobj_t *h, const char *f, size_t flen, const char *v, size_t vlen)
{
    ks_ent_t **ref = tab_ref(&h->t, f, flen);
    if (ref) {
        ks_ent_t *e = *ref;
        if (ENT_HDR + flen + vlen > cairn_mem_size(e)) {
            e = cairn_realloc(e, ENT_HDR + flen + vlen);
            *ref = e;
        }
        e->vlen = (uint32_t)vlen;
        memcpy(ent_val(e), v, vlen);
        return 0;
    }
    ks_ent_t *e = ent_new(f, flen, vlen, false);
    memcpy(ent_val(e), v, vlen);
    tab_add(&h->t, e);
    return 1;
}

bool hobj_del(hobj_t *h, const char *f, size_t flen)
{
    ks_ent_t **ref = tab_ref(&h->t, f, flen);
    if (!ref) return false;
    ks_ent_t *e = *ref;
    tab_unlink(&h->t, ref);
    cairn_free(e);
    tab_maybe_shrink(&h->t);
    return true;
}

struct hscan_ctx {
    hobj_scan_fn fn;
    void *arg;
};

static void hscan_tramp(void *arg, ks_ent_t *e)
{
    struct hscan_ctx *c = arg;
    c->fn(c->arg, ent_key(e), e->klen, ent_val(e), e->vlen);
}

uint64_t hobj_scan(hobj_t *h, uint64_t cursor, hobj_scan_fn fn, void *arg)
{
    struct hscan_ctx c = {fn, arg};
    return tab_scan(&h->t, cursor, hscan_tramp, &c);
}

void hobj_foreach(hobj_t *h, hobj_scan_fn fn, void *arg)
{
    struct hscan_ctx c = {fn, arg};
    tab_foreach(&h->t, hscan_tramp, &c);
}

/* ---- the keyspace ---- */

ks_t *ks_create(void)
{
    ks_t *ks = cairn_calloc(1, sizeof(*ks));
    tab_init(&ks->t);
    return ks;
}

static void free_ent(ks_ent_t *e)
{
    if (e->type == KS_HASH) hobj_destroy(ks_ent_hash(e));
    cairn_free(e);
}

void ks_destroy(ks_t *ks)
{
    if (!ks) return;
    tab_free(&ks->t, free_ent);
    cairn_free(ks->exp);
    cairn_free(ks);
}

size_t ks_size(const ks_t *ks) { return tab_count(&ks->t); }
size_t ks_expires_count(const ks_t *ks) { return ks->nexp; }

ks_ent_t *ks_find(ks_t *ks, const char *key, size_t klen)
{
    ks_ent_t **ref = tab_ref(&ks->t, key, klen);
    return ref ? *ref : NULL;
}

enum ks_type ks_ent_type(const ks_ent_t *e) { return (enum ks_type)e->type; }

const char *ks_ent_key(const ks_ent_t *e, size_t *klen)
{
    *klen = e->klen;
    return ent_key(e);
}

const char *ks_ent_str(const ks_ent_t *e, size_t *vlen)
{
    assert(e->type == KS_STRING);
    *vlen = e->vlen;
    return ent_val(e);
}

char *ks_ent_str_mut(ks_ent_t *e) { return ent_val(e); }

hobj_t *ks_ent_hash(const ks_ent_t *e)
{
    hobj_t *h;
    assert(e->type == KS_HASH);
    memcpy(&h, ent_val(e), sizeof(h));
    return h;
}

int64_t ks_ent_expire(const ks_ent_t *e)
{
    if (!(e->flags & KS_F_EXPIRE)) return KS_NO_EXPIRE;
    int64_t at;
    memcpy(&at, e->data, 8);
    return at;
}

/* -- the dense list of expiring entries -- */

static void exp_add(ks_t *ks, ks_ent_t *e)
{
    if (ks->nexp == ks->capexp) {
        ks->capexp = ks->capexp ? ks->capexp * 2 : 16;
        ks->exp = cairn_realloc(ks->exp, ks->capexp * sizeof(*ks->exp));
    }
    ent_set_slot(e, (uint32_t)ks->nexp);
    ks->exp[ks->nexp++] = e;
}

static void exp_remove(ks_t *ks, ks_ent_t *e)
{
    uint32_t s = ent_slot(e);
    assert(s < ks->nexp && ks->exp[s] == e);
    ks_ent_t *last = ks->exp[--ks->nexp];
    ks->exp[s] = last;
    ent_set_slot(last, s);
    if (ks->capexp > 64 && ks->nexp * 4 < ks->capexp) {
        ks->capexp /= 2;
        ks->exp = cairn_realloc(ks->exp, ks->capexp * sizeof(*ks->exp));
    }
}

/* After an entry moved in memory, point its table slot and expiry slot at
 * the new address. */
static void ent_moved(ks_t *ks, ks_ent_t **ref, ks_ent_t *e)
{
    *ref = e;
    if (e->flags & KS_F_EXPIRE) ks->exp[ent_slot(e)] = e;
}

static ks_ent_t **ref_of(ks_t *ks, ks_ent_t *e)
{
    ks_ent_t **ref = tab_ref(&ks->t, ent_key(e), e->klen);
    assert(ref && *ref == e);
    return ref;
}

ks_ent_t *ks_set_str(ks_t *ks, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire)
{
    ks_ent_t **ref = tab_ref(&ks->t, key, klen);
    ks_ent_t *old = ref ? *ref : NULL;
    if (expire == KS_KEEPTTL) expire = old ? ks_ent_expire(old) : KS_NO_EXPIRE;
    bool has_exp = expire != KS_NO_EXPIRE;
    if (old && old->type == KS_STRING && (bool)(old->flags & KS_F_EXPIRE) == has_exp &&
        ENT_HDR + ent_prefix(old) + klen + vlen <= cairn_mem_size(old) &&
        ENT_HDR + ent_prefix(old) + klen + vlen + 32 > cairn_mem_size(old)) {
        /* Overwrite in place: same shape, and the allocation is not much
         * larger than needed. */
        old->vlen = (uint32_t)vlen;
        memmove(ent_val(old), val, vlen);
        if (has_exp) memcpy(old->data, &expire, 8);
        return old;
    }
    ks_ent_t *e = ent_new(key, klen, vlen, has_exp);
    e->type = KS_STRING;
    memcpy(ent_val(e), val, vlen);
    if (has_exp) memcpy(e->data, &expire, 8);
    if (old) {
        e->next = old->next;
        *ref = e;
        if (old->flags & KS_F_EXPIRE) exp_remove(ks, old);
        free_ent(old);
    } else {
        tab_add(&ks->t, e);
    }
    if (has_exp) exp_add(ks, e);
    return e;
}

ks_ent_t *ks_resize_str(ks_t *ks, ks_ent_t *e, size_t vlen)
{
    assert(e->type == KS_STRING);
    size_t need = ENT_HDR + ent_prefix(e) + e->klen + vlen;
    if (need > cairn_mem_size(e)) {
        /* Growing in place (APPEND, SETRANGE): leave room to grow again so a
         * run of appends is amortised O(1), as Redis's sds does. */
        size_t extra = vlen < (1u << 20) ? vlen : (1u << 20);
        ks_ent_t **ref = ref_of(ks, e);
        e = cairn_realloc(e, need + extra);
        ent_moved(ks, ref, e);
    }
    if (vlen > e->vlen) memset(ent_val(e) + e->vlen, 0, vlen - e->vlen);
    e->vlen = (uint32_t)vlen;
    return e;
}

ks_ent_t *ks_add_hash(ks_t *ks, const char *key, size_t klen)
{
    hobj_t *h = hobj_create();
    ks_ent_t *e = ent_new(key, klen, sizeof(h), false);
    e->type = KS_HASH;
    memcpy(ent_val(e), &h, sizeof(h));
    tab_add(&ks->t, e);
    return e;
}

ks_ent_t *ks_set_expire(ks_t *ks, ks_ent_t *e, int64_t at)
{
    bool had = e->flags & KS_F_EXPIRE, want = at != KS_NO_EXPIRE;
    if (had && want) {
        memcpy(e->data, &at, 8);
        return e;
    }
    if (!had && !want) return e;
    ks_ent_t **ref = ref_of(ks, e);
    size_t body = e->klen + e->vlen;
    ks_ent_t *n = ent_new(ent_key(e), e->klen, e->vlen, want);
    n->type = e->type;
    n->next = e->next;
    memcpy(ent_key(n), ent_key(e), body);
    if (had) exp_remove(ks, e);
    cairn_free(e);
    *ref = n;
    if (want) {
        memcpy(n->data, &at, 8);
        exp_add(ks, n);
    }
    return n;
}

void ks_del_ent(ks_t *ks, ks_ent_t *e)
{
    ks_ent_t **ref = ref_of(ks, e);
    tab_unlink(&ks->t, ref);
    if (e->flags & KS_F_EXPIRE) exp_remove(ks, e);
    free_ent(e);
    tab_maybe_shrink(&ks->t);
}

bool ks_del(ks_t *ks, const char *key, size_t klen)
{
    ks_ent_t *e = ks_find(ks, key, klen);
    if (!e) return false;
    ks_del_ent(ks, e);
    return true;
}

ks_ent_t *ks_rename(ks_t *ks, ks_ent_t *e, const char *newkey, size_t nklen)
{
    ks_ent_t **ref = ref_of(ks, e);
    tab_unlink(&ks->t, ref);
    bool has_exp = e->flags & KS_F_EXPIRE;
    ks_ent_t *n = ent_new(newkey, nklen, e->vlen, has_exp);
    n->type = e->type;
    memcpy(ent_val(n), ent_val(e), e->vlen);
    if (has_exp) {
        memcpy(n->data, e->data, 8);
        exp_remove(ks, e);
        exp_add(ks, n);
    }
    cairn_free(e); /* the value (hash pointer) now belongs to n */
    tab_add(&ks->t, n);
    return n;
}

void ks_flush(ks_t *ks)
{
    tab_free(&ks->t, free_ent);
    cairn_free(ks->exp);
    ks->exp = NULL;
    ks->nexp = ks->capexp = 0;
}

uint64_t ks_scan(ks_t *ks, uint64_t cursor, ks_scan_fn fn, void *arg)
{
    return tab_scan(&ks->t, cursor, fn, arg);
}

void ks_foreach(ks_t *ks, ks_scan_fn fn, void *arg) { tab_foreach(&ks->t, fn, arg); }

ks_ent_t *ks_random(ks_t *ks, uint64_t (*rnd)(void)) { return tab_random(&ks->t, rnd); }

ks_ent_t *ks_random_expiring(ks_t *ks, uint64_t (*rnd)(void))
{
    return ks->nexp ? ks->exp[rnd() % ks->nexp] : NULL;
}

bool ks_rehash_step(ks_t *ks, int steps)
{
    tab_rehash(&ks->t, (size_t)steps);
    return rehashing(&ks->t);
}

size_t ks_max_rehash_work(const ks_t *ks) { return ks->t.max_work; }
