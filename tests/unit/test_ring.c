/*
 * test_ring.c — the consistent-hash ring (src/lib/ring.c).
 *
 * Covers: known answers (the ring's definition is frozen: a fixed ring of
 * three shards and twenty fixed keys must keep mapping where they do, or
 * every gateway of a cluster mid-upgrade would route differently); the
 * Redis hash-tag rule; balance of 3, 10 and 100 equal shards; key movement
 * when a shard joins or leaves, against the ideal 1/(N+1), and that keys
 * only ever move to the joining shard or from the leaving one; weights;
 * the edges (no shard, weight 0, bad lists, wrap-around, list order).
 *
 * The fixture, built once for the group (cmocka hands the group's state to
 * every case), is one million key hashes of "key:<random u64>" drawn from a
 * fixed seed; the statistical cases print their figures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/ring.h"
#include "lib/util.h"

#define NKEYS 1000000

typedef struct fx {
    uint64_t *hashes; /* NKEYS key hashes */
} fx;

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int group_setup(void **state)
{
    fx *f = test_calloc(1, sizeof(*f));
    f->hashes = test_malloc(NKEYS * sizeof(*f->hashes));
    uint64_t seed = 20240601;
    for (size_t i = 0; i < NKEYS; i++) {
        char k[32] = "key:";
        size_t n = 4 + u64_to_str(k + 4, splitmix64(&seed));
        f->hashes[i] = ring_key_hash(k, n);
    }
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fx *f = *state;
    test_free(f->hashes);
    test_free(f);
    return 0;
}

/* A ring of shards 1..n, weight 1 each, default points. */
static ring_t *equal_ring(uint32_t n)
{
    ring_shard s[128];
    assert_true(n <= 128);
    for (uint32_t i = 0; i < n; i++) s[i] = (ring_shard){i + 1, 1};
    ring_t *r = ring_create(s, n, 0);
    assert_non_null(r);
    return r;
}

/* Keys per shard id (ids 1..max) over the shared key set. */
static void count_keys(const fx *f, const ring_t *r, size_t *counts, uint32_t max)
{
    memset(counts, 0, (max + 1) * sizeof(*counts));
    for (size_t i = 0; i < NKEYS; i++) {
        uint32_t s = ring_lookup(r, f->hashes[i]);
        assert_true(s >= 1 && s <= max);
        counts[s]++;
    }
}

static void known_answers_are_pinned(void **state)
{
    (void)state;
    /* Computed once from the definition in ring.h and pinned.  If this
     * fails, the ring's definition changed: that re-routes keys in a live
     * cluster, so it needs a migration, not a new table. */
    static const ring_shard shards[] = {{101, 1}, {202, 1}, {303, 2}};
    static const struct {
        const char *key;
        size_t len;
        uint64_t hash;
        uint32_t shard;
    } v[] = {
        {"", 0, 0x2d06800538d394c2ull, 101}, /* XXH3-64 of nothing: the published constant */
        {"foo", 3, 0xab6e5f64077e7d8aull, 303},
        {"bar", 3, 0xd463c860a032d362ull, 303},
        {"baz", 3, 0x2a1e7301336f8925ull, 303},
        {"hello", 5, 0x9555e8555c62dcfdull, 101},
        {"user:1000", 9, 0xfb6841b2068c0c9full, 303},
        {"user:1001", 9, 0x783864580ee66e90ull, 303},
        {"user:1002", 9, 0xae0030009279872bull, 303},
        {"session:abc", 11, 0x00c6bcdf2ba3e0fcull, 101},
        {"session:xyz", 11, 0xcc58a762ffc10dd5ull, 303},
        {"{user1000}.following", 20, 0xb03c8988cdc1c874ull, 202},
        {"{user1000}.followers", 20, 0xb03c8988cdc1c874ull, 202},
        {"foo{}{bar}", 10, 0xc183e6678835189cull, 303},
        {"foo{{bar}}zap", 13, 0xa3610095f98f8e10ull, 303},
        {"counter", 7, 0x4adf3b791635581dull, 202},
        {"a", 1, 0xe6c632b61e964e1full, 101},
        {"b", 1, 0x575a0b1c44d8843full, 202},
        {"c", 1, 0x8c40219a46b9f81bull, 303},
        {"queue:jobs", 10, 0x4e55c754e7598717ull, 202},
        {"\xff\x00\x01", 3, 0x5798cfa26addd6edull, 101},
    };
    ring_t *r = ring_create(shards, 3, 0);
    assert_non_null(r);
    assert_int_equal(ring_points(r), 4 * RING_VNODES_DEFAULT);
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint64_t h = ring_key_hash(v[i].key, v[i].len);
        if (h != v[i].hash) fail_msg("key #%zu: hash %016llx", i, (unsigned long long)h);
        if (ring_lookup(r, h) != v[i].shard) fail_msg("key #%zu: shard %u", i, ring_lookup(r, h));
    }
    ring_destroy(r);
}

static void hash_tags_follow_redis_cluster(void **state)
{
    (void)state;
#define H(s) ring_key_hash(s, sizeof(s) - 1)
    assert_true(H("{user1000}.following") == H("{user1000}.followers"));
    assert_true(H("{user1000}.following") == H("user1000"));
    assert_true(H("x{user1000}y") == H("user1000"));
    /* Empty tag: the whole key is hashed, later braces ignored. */
    assert_true(H("foo{}{bar}") != H("bar"));
    assert_true(H("foo{}{bar}") == ring_key_hash("foo{}{bar}", 10));
    /* From the first '{' to the next '}': the tag is "{bar". */
    assert_true(H("foo{{bar}}zap") == H("{bar"));
    /* Only the first tag counts. */
    assert_true(H("{a}{b}") == H("a"));
    /* No closing brace, or a '}' only before the '{': whole key. */
    assert_true(H("foo{bar") != H("bar"));
    assert_true(H("foo}bar{") != H("bar"));
    assert_true(H("{") == ring_key_hash("{", 1));
    /* Binary-safe: a NUL inside the tag is part of it. */
    assert_true(ring_key_hash("{a\0b}x", 6) == ring_key_hash("a\0b", 3));
    assert_true(ring_key_hash("{a\0b}x", 6) != H("a"));
    assert_true(ring_key_hash(NULL, 0) == H(""));
#undef H
}

static void balance_of_equal_shards(void **state)
{
    const fx *f = *state;
    static const uint32_t ns[] = {3, 10, 100};
    size_t counts[101];
    for (size_t t = 0; t < 3; t++) {
        uint32_t n = ns[t];
        ring_t *r = equal_ring(n);
        count_keys(f, r, counts, n);
        size_t max = 0, min = NKEYS;
        for (uint32_t s = 1; s <= n; s++) {
            if (counts[s] > max) max = counts[s];
            if (counts[s] < min) min = counts[s];
        }
        double avg = (double)NKEYS / n;
        printf("[ring] balance %3u shards x %u points: max/avg %.3f  min/avg %.3f\n", n,
               RING_VNODES_DEFAULT, max / avg, min / avg);
        if (n == 10) assert_true(max / avg <= 1.10);
        assert_true(max / avg <= 1.25); /* gross breakage at any size */
        ring_destroy(r);
    }
}

static void adding_or_removing_a_shard_moves_only_its_keys(void **state)
{
    const fx *f = *state;
    static const uint32_t ns[] = {3, 10, 100};
    for (size_t t = 0; t < 3; t++) {
        uint32_t n = ns[t];
        ring_t *before = equal_ring(n);
        ring_t *after = equal_ring(n + 1); /* shard n+1 joins */
        /* Shard 1 leaves the n+1 ring. */
        ring_shard s[128];
        for (uint32_t i = 0; i < n; i++) s[i] = (ring_shard){i + 2, 1};
        ring_t *less = ring_create(s, n, 0);
        assert_non_null(less);

        size_t added = 0, removed = 0;
        for (size_t i = 0; i < NKEYS; i++) {
            uint32_t a = ring_lookup(before, f->hashes[i]);
            uint32_t b = ring_lookup(after, f->hashes[i]);
            uint32_t c = ring_lookup(less, f->hashes[i]);
            if (a != b) {
                /* A key moves only onto the new shard, never between two
                 * old ones. */
                assert_int_equal(b, n + 1);
                added++;
            }
            if (b != c) {
                /* Only the leaving shard's keys move. */
                assert_int_equal(b, 1);
                removed++;
            }
        }
        double ideal = (double)NKEYS / (n + 1);
        printf("[ring] movement %3u -> %3u shards: %.4f of keys (ideal %.4f), ratio %.3f;"
               "  %3u -> %3u: %.4f, ratio %.3f\n",
               n, n + 1, (double)added / NKEYS, 1.0 / (n + 1), added / ideal, n + 1, n,
               (double)removed / NKEYS, removed / ideal);
        assert_true(added / ideal <= 1.1);
        assert_true(removed / ideal <= 1.1);
        ring_destroy(before);
        ring_destroy(after);
        ring_destroy(less);
    }
}

static void weight_two_gets_twice_the_keys(void **state)
{
    const fx *f = *state;
    /* One shard's share wanders about 1/sqrt(160 x weight) (8% at weight
     * 1), so the single ring gets a loose bound and the 20-shard ring, which
     * averages ten shards of each weight, a tight one. */
    ring_shard s[] = {{1, 1}, {2, 2}, {3, 1}, {4, 0}};
    ring_t *r = ring_create(s, 4, 0);
    assert_non_null(r);
    assert_int_equal(ring_points(r), 4 * RING_VNODES_DEFAULT);
    size_t counts[21];
    count_keys(f, r, counts, 4);
    double ratio = counts[2] / ((counts[1] + counts[3]) / 2.0);
    printf("[ring] weights 1,2,1,0: shares %.3f %.3f %.3f %.3f; weight-2 / weight-1 = %.3f\n",
           (double)counts[1] / NKEYS, (double)counts[2] / NKEYS, (double)counts[3] / NKEYS,
           (double)counts[4] / NKEYS, ratio);
    assert_true(ratio >= 1.75 && ratio <= 2.25);
    assert_int_equal(counts[4], 0); /* weight 0 owns nothing */
    ring_destroy(r);

    ring_shard m[20];
    for (uint32_t i = 0; i < 20; i++) m[i] = (ring_shard){i + 1, i < 10 ? 1 : 2};
    r = ring_create(m, 20, 0);
    count_keys(f, r, counts, 20);
    size_t one = 0, two = 0;
    for (uint32_t i = 1; i <= 20; i++) *(i <= 10 ? &one : &two) += counts[i];
    ratio = (double)two / one;
    printf("[ring] 10 shards of weight 1 + 10 of weight 2: keys per weight-2 shard / per weight-1 "
           "shard = %.3f\n", ratio);
    assert_true(ratio >= 1.9 && ratio <= 2.1);
    ring_destroy(r);
}

static void empty_ring_returns_none(void **state)
{
    (void)state;
    ring_t *r = ring_create(NULL, 0, 0);
    assert_non_null(r);
    assert_int_equal(ring_points(r), 0);
    assert_int_equal(ring_lookup(r, 0), RING_NONE);
    assert_int_equal(ring_lookup(r, UINT64_MAX), RING_NONE);
    ring_destroy(r);

    ring_shard s[] = {{1, 0}, {2, 0}};
    r = ring_create(s, 2, 0);
    assert_non_null(r);
    assert_int_equal(ring_lookup(r, 12345), RING_NONE);
    ring_destroy(r);

    assert_int_equal(ring_lookup(NULL, 1), RING_NONE);
    assert_int_equal(ring_points(NULL), 0);
    ring_destroy(NULL);
}

static void bad_shard_lists_are_refused(void **state)
{
    (void)state;
    ring_shard dup[] = {{1, 1}, {2, 1}, {1, 3}};
    assert_null(ring_create(dup, 3, 0));
    ring_shard none[] = {{RING_NONE, 1}};
    assert_null(ring_create(none, 1, 0));
    assert_null(ring_create(NULL, 1, 0));
    ring_shard huge[] = {{1, UINT32_MAX}};
    assert_null(ring_create(huge, 1, 0));
    ring_shard many[] = {{1, RING_MAX_POINTS / 2}, {2, RING_MAX_POINTS / 2}, {3, 1}};
    assert_null(ring_create(many, 3, 1));
}

static void lookup_wraps_and_ignores_list_order(void **state)
{
    const fx *f = *state;
    ring_shard a[] = {{1, 1}, {2, 3}, {3, 1}, {4, 2}};
    ring_shard b[] = {{4, 2}, {3, 1}, {1, 1}, {2, 3}};
    ring_t *ra = ring_create(a, 4, 0), *rb = ring_create(b, 4, 0);
    for (size_t i = 0; i < 100000; i++)
        assert_int_equal(ring_lookup(ra, f->hashes[i]), ring_lookup(rb, f->hashes[i]));
    /* Past the last point wraps to the first: UINT64_MAX (almost surely
     * beyond every point) and 0 (before every point) share an owner. */
    assert_int_equal(ring_lookup(ra, UINT64_MAX), ring_lookup(ra, 0));
    ring_destroy(ra);
    ring_destroy(rb);

    /* One point: it owns everything. */
    ring_shard one[] = {{9, 1}};
    ring_t *r = ring_create(one, 1, 1);
    assert_int_equal(ring_points(r), 1);
    uint64_t p = ring_key_hash("9-0", 3); /* the point itself */
    assert_int_equal(ring_lookup(r, p), 9);
    assert_int_equal(ring_lookup(r, p + 1), 9);
    assert_int_equal(ring_lookup(r, 0), 9);
    ring_destroy(r);
}

static void lookup_lands_on_the_next_point(void **state)
{
    (void)state;
    /* Two shards, one point each: the owner of h is whichever point comes
     * first at or after h. */
    ring_shard s[] = {{1, 1}, {2, 1}};
    ring_t *r = ring_create(s, 2, 1);
    uint64_t p1 = ring_key_hash("1-0", 3), p2 = ring_key_hash("2-0", 3);
    uint64_t lo = p1 < p2 ? p1 : p2, hi = p1 < p2 ? p2 : p1;
    uint32_t lo_id = p1 < p2 ? 1 : 2, hi_id = p1 < p2 ? 2 : 1;
    assert_int_equal(ring_lookup(r, lo), lo_id);
    assert_int_equal(ring_lookup(r, lo + 1), hi_id);
    assert_int_equal(ring_lookup(r, hi), hi_id);
    assert_int_equal(ring_lookup(r, hi + 1), lo_id); /* wraps */
    assert_int_equal(ring_lookup(r, lo - 1), lo_id);
    ring_destroy(r);
}

/* The reference owner of h: the smallest (hash, id) point at or after h,
 * else the smallest point (wrap), found by a plain scan of every point. */
typedef struct ref_point {
    uint64_t hash;
    uint32_t id;
} ref_point;

static uint32_t ref_owner(const ref_point *pt, size_t n, uint64_t h)
{
    const ref_point *best = NULL, *min = NULL;
    for (size_t i = 0; i < n; i++) {
        const ref_point *p = &pt[i];
        if (!min || p->hash < min->hash || (p->hash == min->hash && p->id < min->id)) min = p;
        if (p->hash >= h && (!best || p->hash < best->hash || (p->hash == best->hash && p->id < best->id)))
            best = p;
    }
    return best ? best->id : min->id;
}

static void indexed_lookup_matches_a_full_scan(void **state)
{
    (void)state;
    /* The lookup searches one bucket of an index; check it against a scan
     * of all points at every point, next to it, on bucket edges, at the
     * ends, and at random hashes, for rings from one point to 16,000. */
    static const struct {
        size_t n;
        unsigned vnodes;
    } rings[] = {{1, 1}, {2, 1}, {3, 160}, {10, 160}, {100, 160}};
    uint64_t seed = 7;
    for (size_t ri = 0; ri < sizeof(rings) / sizeof(*rings); ri++) {
        size_t n = rings[ri].n;
        ring_shard s[100];
        size_t total = 0;
        for (size_t i = 0; i < n; i++) {
            s[i] = (ring_shard){(uint32_t)(i + 1), (uint32_t)(1 + i % 3)};
            total += s[i].weight * rings[ri].vnodes;
        }
        ref_point *pt = test_malloc(total * sizeof(*pt));
        size_t k = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < s[i].weight * rings[ri].vnodes; j++) {
                char name[48];
                size_t l = u64_to_str(name, s[i].id);
                name[l++] = '-';
                l += u64_to_str(name + l, j);
                pt[k++] = (ref_point){ring_key_hash(name, l), s[i].id};
            }
        ring_t *r = ring_create(s, n, rings[ri].vnodes);
        assert_int_equal(ring_points(r), total);
        uint64_t probes[64 + 3 * 512];
        size_t np = 0;
        probes[np++] = 0;
        probes[np++] = UINT64_MAX;
        for (unsigned bits = 1; bits <= 16; bits++) {
            uint64_t edge = (uint64_t)1 << (64 - bits);
            probes[np++] = edge;
            probes[np++] = edge - 1;
        }
        for (size_t i = 0; i < total && np + 3 <= sizeof(probes) / sizeof(*probes); i += 1 + total / 512) {
            probes[np++] = pt[i].hash;
            probes[np++] = pt[i].hash - 1;
            probes[np++] = pt[i].hash + 1;
        }
        for (size_t i = 0; i < np; i++)
            if (ring_lookup(r, probes[i]) != ref_owner(pt, total, probes[i]))
                fail_msg("ring %zu: hash %llu owned by %u, scan says %u", ri, (unsigned long long)probes[i],
                         ring_lookup(r, probes[i]), ref_owner(pt, total, probes[i]));
        for (int i = 0; i < 2000; i++) {
            uint64_t h = splitmix64(&seed);
            assert_int_equal(ring_lookup(r, h), ref_owner(pt, total, h));
        }
        ring_destroy(r);
        test_free(pt);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(known_answers_are_pinned),
        cmocka_unit_test(hash_tags_follow_redis_cluster),
        cmocka_unit_test(balance_of_equal_shards),
        cmocka_unit_test(adding_or_removing_a_shard_moves_only_its_keys),
        cmocka_unit_test(weight_two_gets_twice_the_keys),
        cmocka_unit_test(empty_ring_returns_none),
        cmocka_unit_test(bad_shard_lists_are_refused),
        cmocka_unit_test(lookup_wraps_and_ignores_list_order),
        cmocka_unit_test(lookup_lands_on_the_next_point),
        cmocka_unit_test(indexed_lookup_matches_a_full_scan),
    };
    return cmocka_run_group_tests_name("ring", tests, group_setup, group_teardown);
}
