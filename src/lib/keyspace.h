/*
 * keyspace.h — the in-memory keyspace of one data node: binary-safe keys
 * mapped to typed values (strings, hashes), with optional expiry.
 *
 * Layout, chosen for memory per key: a key is ONE allocation,
 *
 *     ks_ent: next | klen | vlen | type | flags | [expire_at | exp_slot] key value
 *
 * with the string value stored inline after the key (a hash value stores a
 * pointer to its field table there).  The table is chained with incremental
 * rehashing (no O(n) pause as it grows) and a reverse-binary scan cursor that
 * survives resizes (every key present for a whole SCAN is returned).
 *
 * Expiry is not checked here: the keyspace stores `expire_at` (unix ms, or
 * KS_NO_EXPIRE) and the caller decides what "expired" means at which clock.
 * Keys that have an expiry are also listed in a dense array so that active
 * expiry can sample them uniformly in O(1).
 *
 * Pointer validity: a ks_ent* stays valid until the next call that modifies
 * the keyspace (set, delete, resize, expire change, flush).  Functions that
 * may move the entry return the new pointer.
 */
#ifndef CAIRN_KEYSPACE_H
#define CAIRN_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KS_NO_EXPIRE INT64_MIN
#define KS_KEEPTTL (INT64_MIN + 1) /* ks_set_str: keep the existing expiry */

enum ks_type { KS_STRING = 1, KS_HASH = 2 };

typedef struct ks ks_t;
typedef struct ks_ent ks_ent_t;
typedef struct hobj hobj_t; /* a hash value: field -> value */

ks_t *ks_create(void);
void ks_destroy(ks_t *ks);

size_t ks_size(const ks_t *ks);
size_t ks_expires_count(const ks_t *ks);

/* Look a key up (expired or not).  NULL when absent. */
ks_ent_t *ks_find(ks_t *ks, const char *key, size_t klen);

enum ks_type ks_ent_type(const ks_ent_t *e);
const char *ks_ent_key(const ks_ent_t *e, size_t *klen);
/* String value (type KS_STRING only); not NUL-terminated. */
const char *ks_ent_str(const ks_ent_t *e, size_t *vlen);
/* Hash value (type KS_HASH only), owned by the entry. */
hobj_t *ks_ent_hash(const ks_ent_t *e);
/* Expiry as unix ms, or KS_NO_EXPIRE. */
int64_t ks_ent_expire(const ks_ent_t *e);

/* Set `key` to a string value, replacing any value of any type.  `expire`
 * is unix ms, KS_NO_EXPIRE, or KS_KEEPTTL.  Returns the entry. */
ks_ent_t *ks_set_str(ks_t *ks, const char *key, size_t klen, const char *val, size_t vlen,
                     int64_t expire);
/* Resize the string value of `e` to `vlen` bytes, keeping the common prefix
 * and expiry (new bytes are zero).  Returns the (possibly moved) entry; its
 * value may then be written through ks_ent_str_mut. */
ks_ent_t *ks_resize_str(ks_t *ks, ks_ent_t *e, size_t vlen);
char *ks_ent_str_mut(ks_ent_t *e);

/* Create `key` as an empty hash (the key must be absent). */
ks_ent_t *ks_add_hash(ks_t *ks, const char *key, size_t klen);

/* Set or clear (KS_NO_EXPIRE) the expiry; returns the (possibly moved) entry. */
ks_ent_t *ks_set_expire(ks_t *ks, ks_ent_t *e, int64_t expire_at);

/* Remove an entry / a key, freeing its value.  ks_del returns true if the
 * key existed. */
void ks_del_ent(ks_t *ks, ks_ent_t *e);
bool ks_del(ks_t *ks, const char *key, size_t klen);

/* Rename: move `e` to `newkey` (which must be absent), keeping value and
 * expiry.  Returns the new entry. */
ks_ent_t *ks_rename(ks_t *ks, ks_ent_t *e, const char *newkey, size_t nklen);

void ks_flush(ks_t *ks);

/* One step of scanning: calls `fn` for the entries of the bucket(s) at
 * `cursor` and returns the next cursor (0 when done).  `fn` must not modify
 * the keyspace. */
typedef void (*ks_scan_fn)(void *arg, ks_ent_t *e);
uint64_t ks_scan(ks_t *ks, uint64_t cursor, ks_scan_fn fn, void *arg);

/* Call `fn` for every entry, in table order; `fn` must not modify. */
void ks_foreach(ks_t *ks, ks_scan_fn fn, void *arg);

/* A random entry (NULL when empty), using `rnd` as the random source. */
ks_ent_t *ks_random(ks_t *ks, uint64_t (*rnd)(void));
/* A random entry among those with an expiry (NULL when none). */
ks_ent_t *ks_random_expiring(ks_t *ks, uint64_t (*rnd)(void));

/* Do up to `steps` buckets of incremental rehashing (for idle time). Returns
 * true while a rehash is still in progress. */
bool ks_rehash_step(ks_t *ks, int steps);

/* Most buckets moved by any single operation since creation; tests use it to
 * show growth never does O(n) work in one call. */
size_t ks_max_rehash_work(const ks_t *ks);

/* ---- hash values ---- */

hobj_t *hobj_create(void);
void hobj_destroy(hobj_t *h);
size_t hobj_len(const hobj_t *h);
/* Returns true and sets *v and *vlen (valid until the hash is modified). */
bool hobj_get(hobj_t *h, const char *f, size_t flen, const char **v, size_t *vlen);
/* Returns 1 if the field was created, 0 if an existing one was updated. */
int hobj_set(hobj_t *h, const char *f, size_t flen, const char *v, size_t vlen);
/* Returns true if the field existed. */
bool hobj_del(hobj_t *h, const char *f, size_t flen);
typedef void (*hobj_scan_fn)(void *arg, const char *f, size_t flen, const char *v, size_t vlen);
uint64_t hobj_scan(hobj_t *h, uint64_t cursor, hobj_scan_fn fn, void *arg);
void hobj_foreach(hobj_t *h, hobj_scan_fn fn, void *arg);
/* Bytes used by the hash's fields and table (for memory accounting). */

#endif
