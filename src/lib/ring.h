/*
 * ring.h — the consistent-hash ring: which shard owns a key.
 *
 * The ring is a pure function of the shard list (DESIGN.md, "Consistent
 * hashing"): every gateway and manager that builds it from the same
 * configuration version gets the same ring, bit for bit.  To keep it so,
 * the definition below is frozen — test_ring.c pins known answers, and any
 * change to it is a change of cluster-wide routing that needs a migration.
 *
 * Definition (version 1):
 *
 *   key hash    XXH3_64bits(tag, seed 0) where tag is the key's hash tag
 *               when it has one, else the whole key (ring_key_hash).
 *
 *   points      shard `id` of weight `w` owns vnodes x w points; point i
 *               (0 <= i < vnodes x w) sits at XXH3_64bits(s, seed 0), s
 *               being the ASCII string "<id>-<i>" — both numbers in
 *               decimal, no leading zeros, no sign, no NUL; e.g. shard 7's
 *               first point hashes "7-0".  A shard of weight 0 owns no
 *               point (it is drained: no key maps to it).
 *
 *   owner       a hash h belongs to the first point clockwise at or after
 *               h, i.e. the point with the smallest hash >= h, wrapping to
 *               the smallest point of all when h is past the last one.
 *
 *   ties        two points with the same 64-bit hash are ordered by shard
 *               id, smaller first, so the smaller id owns that position
 *               whatever order the shards were listed in.
 *
 * Points are kept in one array sorted by (hash, shard id); a lookup is a
 * binary search, O(log P) for P points (160 x total weight by default).
 */
#ifndef CAIRN_RING_H
#define CAIRN_RING_H

#include <stddef.h>
#include <stdint.h>

/* Points per unit of weight when ring_create is given 0. */
#define RING_VNODES_DEFAULT 160u

/* What ring_lookup returns when the ring has no point (no shard, or every
 * weight 0).  Not a valid shard id: ring_create refuses it. */
#define RING_NONE UINT32_MAX

/* Upper bound on the total number of points (vnodes x sum of weights);
 * 2^24 points is 256 MiB of ring, far past any sane configuration. */
#define RING_MAX_POINTS (1u << 24)

typedef struct ring_shard {
    uint32_t id;     /* shard id, unique in the list, != RING_NONE */
    uint32_t weight; /* relative share; 0 = owns nothing */
} ring_shard;

typedef struct ring ring_t;

/* Build the ring of `n` shards (`shards` may be NULL when n == 0) with
 * `vnodes_per_weight` points per unit of weight (0 means
 * RING_VNODES_DEFAULT).  The list's order does not matter.  The caller
 * keeps ownership of `shards`; the ring copies what it needs.
 *
 * Returns a ring to release with ring_destroy, or NULL when the input is
 * invalid: a repeated shard id, the id RING_NONE, or more than
 * RING_MAX_POINTS points in all.  (Allocation failure aborts, as
 * everywhere in cairn.) */
ring_t *ring_create(const ring_shard *shards, size_t n, unsigned vnodes_per_weight);

/* Release the ring (NULL is fine). */
void ring_destroy(ring_t *r);

/* The id of the shard owning hash `h`, or RING_NONE when the ring has no
 * point (or r is NULL).  About O(1) (an index narrows the search to
 * one bucket of about one point); r is only read, so any number of
 * threads may look up one ring at once. */
uint32_t ring_lookup(const ring_t *r, uint64_t h);

/* The ring hash of a key (`len` bytes at `key`; key may be NULL when
 * len == 0), Redis Cluster's hash-tag rule: if the key has a '{' and a '}'
 * somewhere after the first '{', and at least one byte between them, only
 * those bytes are hashed; otherwise the whole key is.  So
 * "{user1000}.following" and "{user1000}.followers" hash alike, "foo{}{bar}"
 * hashes whole, and "foo{{bar}}zap" hashes "{bar". */
uint64_t ring_key_hash(const void *key, size_t len);

/* Number of points on the ring (0 for NULL). */
size_t ring_points(const ring_t *r);

#endif
