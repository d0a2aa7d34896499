/*
 * test_keyspace.c — the keyspace and its hash table: set/get/delete of both
 * types, in-place and moving updates, expiry bookkeeping, SCAN across
 * resizes, random sampling, and growth without O(n) work in one call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/keyspace.h"
#include "lib/mem.h"

typedef struct fixture {
    ks_t *ks;
} fixture;

static int setup(void **state)
{
    fixture *f = cairn_calloc(1, sizeof(*f));
    f->ks = ks_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ks_destroy(f->ks);
    cairn_free(f);
    return 0;
}

static uint64_t rnd_state = 88172645463325252ULL;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void key_of(char *buf, size_t len, int i) { snprintf(buf, len, "key:%08d", i); }

static void set_then_find_returns_value(void **state)
{
    fixture *f = *state;
    ks_set_str(f->ks, "a", 1, "hello", 5, KS_NO_EXPIRE);
    ks_ent_t *e = ks_find(f->ks, "a", 1);
    assert_non_null(e);
    size_t l;
    const char *v = ks_ent_str(e, &l);
    assert_int_equal(l, 5);
    assert_memory_equal(v, "hello", 5);
    assert_int_equal(ks_ent_type(e), KS_STRING);
    assert_true(ks_ent_expire(e) == KS_NO_EXPIRE);
    assert_null(ks_find(f->ks, "b", 1));
    assert_int_equal(ks_size(f->ks), 1);
}

static void binary_keys_are_distinct(void **state)
{
    fixture *f = *state;
    ks_set_str(f->ks, "a\0b", 3, "1", 1, KS_NO_EXPIRE);
    ks_set_str(f->ks, "a\0c", 3, "2", 1, KS_NO_EXPIRE);
    ks_set_str(f->ks, "", 0, "empty", 5, KS_NO_EXPIRE);
    assert_int_equal(ks_size(f->ks), 3);
    size_t l;
    assert_memory_equal(ks_ent_str(ks_find(f->ks, "a\0c", 3), &l), "2", 1);
    assert_memory_equal(ks_ent_str(ks_find(f->ks, "", 0), &l), "empty", 5);
}

static void overwrite_keeps_one_entry_and_replaces_type(void **state)
{
    fixture *f = *state;
    ks_ent_t *h = ks_add_hash(f->ks, "k", 1);
    hobj_set(ks_ent_hash(h), "f", 1, "v", 1);
    ks_set_str(f->ks, "k", 1, "short", 5, KS_NO_EXPIRE);
    ks_set_str(f->ks, "k", 1, "a much longer value than before", 31, KS_NO_EXPIRE);
    ks_set_str(f->ks, "k", 1, "x", 1, KS_NO_EXPIRE);
    assert_int_equal(ks_size(f->ks), 1);
    size_t l;
    const char *v = ks_ent_str(ks_find(f->ks, "k", 1), &l);
    assert_int_equal(l, 1);
    assert_memory_equal(v, "x", 1);
}

static void keepttl_and_expire_changes_track_expiring_set(void **state)
{
    fixture *f = *state;
    ks_ent_t *e = ks_set_str(f->ks, "k", 1, "v", 1, 1000);
    assert_int_equal(ks_expires_count(f->ks), 1);
    e = ks_set_str(f->ks, "k", 1, "vv", 2, KS_KEEPTTL);
    assert_true(ks_ent_expire(e) == 1000);
    e = ks_set_expire(f->ks, e, 2000);
    assert_true(ks_ent_expire(e) == 2000);
    e = ks_set_expire(f->ks, e, KS_NO_EXPIRE);
    assert_int_equal(ks_expires_count(f->ks), 0);
    e = ks_set_expire(f->ks, e, 3000);
    assert_int_equal(ks_expires_count(f->ks), 1);
    assert_ptr_equal(ks_random_expiring(f->ks, rnd), e);
    ks_del_ent(f->ks, e);
    assert_int_equal(ks_expires_count(f->ks), 0);
    assert_null(ks_random_expiring(f->ks, rnd));
}

static void expiring_set_survives_many_moves(void **state)
{
    fixture *f = *state;
    char k[32];
    for (int i = 0; i < 2000; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "v", 1, 100 + i);
    }
    /* grow every value (entries move) and delete half */
    for (int i = 0; i < 2000; i++) {
        key_of(k, sizeof(k), i);
        ks_ent_t *e = ks_find(f->ks, k, strlen(k));
        e = ks_resize_str(f->ks, e, 200);
        if (i % 2) ks_del_ent(f->ks, e);
    }
    assert_int_equal(ks_expires_count(f->ks), 1000);
    for (int i = 0; i < 5000; i++) {
        ks_ent_t *e = ks_random_expiring(f->ks, rnd);
        size_t kl;
        const char *key = ks_ent_key(e, &kl);
        assert_ptr_equal(ks_find(f->ks, key, kl), e);
    }
}

static void resize_str_keeps_prefix_and_zero_fills(void **state)
{
    fixture *f = *state;
    ks_ent_t *e = ks_set_str(f->ks, "k", 1, "abc", 3, KS_NO_EXPIRE);
    e = ks_resize_str(f->ks, e, 6);
    size_t l;
    const char *v = ks_ent_str(e, &l);
    assert_int_equal(l, 6);
    assert_memory_equal(v, "abc\0\0\0", 6);
    e = ks_resize_str(f->ks, e, 2);
    v = ks_ent_str(e, &l);
    assert_memory_equal(v, "ab", 2);
}

static void rename_moves_value_and_expiry(void **state)
{
    fixture *f = *state;
    ks_ent_t *h = ks_add_hash(f->ks, "src", 3);
    hobj_set(ks_ent_hash(h), "f", 1, "v", 1);
    h = ks_set_expire(f->ks, h, 5000);
    ks_ent_t *n = ks_rename(f->ks, h, "dst", 3);
    assert_null(ks_find(f->ks, "src", 3));
    assert_ptr_equal(ks_find(f->ks, "dst", 3), n);
    assert_true(ks_ent_expire(n) == 5000);
    const char *v;
    size_t vl;
    assert_true(hobj_get(ks_ent_hash(n), "f", 1, &v, &vl));
    assert_int_equal(ks_expires_count(f->ks), 1);
}

static void hash_fields_set_update_delete(void **state)
{
    (void)state;
    hobj_t *h = hobj_create();
    assert_int_equal(hobj_set(h, "a", 1, "1", 1), 1);
    assert_int_equal(hobj_set(h, "a", 1, "a longer value", 14), 0);
    assert_int_equal(hobj_len(h), 1);
    const char *v;
    size_t vl;
    assert_true(hobj_get(h, "a", 1, &v, &vl));
    assert_int_equal(vl, 14);
    char f[32];
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(f, sizeof(f), "field%d", i);
        hobj_set(h, f, (size_t)n, f, (size_t)n);
    }
    assert_int_equal(hobj_len(h), 10001);
    for (int i = 0; i < 10000; i++) {
        int n = snprintf(f, sizeof(f), "field%d", i);
        assert_true(hobj_del(h, f, (size_t)n));
    }
    assert_false(hobj_del(h, "nope", 4));
    assert_int_equal(hobj_len(h), 1);
    hobj_destroy(h);
}

struct seen {
    unsigned char *hits;
    int n;
};

static void seen_cb(void *arg, ks_ent_t *e)
{
    struct seen *s = arg;
    size_t kl;
    const char *k = ks_ent_key(e, &kl);
    int i = 0;
    sscanf(k, "key:%d", &i);
    if (i >= 0 && i < s->n && s->hits[i] < 255) s->hits[i]++;
}

static void scan_sees_every_key_while_table_grows(void **state)
{
    fixture *f = *state;
    enum { N = 20000 };
    char k[32];
    for (int i = 0; i < 1000; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "v", 1, KS_NO_EXPIRE);
    }
    struct seen s = {cairn_calloc(N, 1), N};
    uint64_t cur = 0;
    int added = 1000, steps = 0;
    do {
        cur = ks_scan(f->ks, cur, seen_cb, &s);
        /* keep growing the table while scanning */
        for (int j = 0; j < 50 && added < N; j++, added++) {
            key_of(k, sizeof(k), added);
            ks_set_str(f->ks, k, strlen(k), "v", 1, KS_NO_EXPIRE);
        }
        steps++;
    } while (cur != 0 && steps < 10000000);
    for (int i = 0; i < 1000; i++) assert_true(s.hits[i] >= 1);
    cairn_free(s.hits);
}

static void scan_sees_every_key_while_table_shrinks(void **state)
{
    fixture *f = *state;
    enum { N = 20000 };
    char k[32];
    for (int i = 0; i < N; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "v", 1, KS_NO_EXPIRE);
    }
    struct seen s = {cairn_calloc(N, 1), N};
    uint64_t cur = 0;
    int deleted = 1000;
    do {
        cur = ks_scan(f->ks, cur, seen_cb, &s);
        for (int j = 0; j < 100 && deleted < N; j++, deleted++) {
            key_of(k, sizeof(k), deleted);
            ks_del(f->ks, k, strlen(k));
        }
    } while (cur != 0);
    for (int i = 0; i < 1000; i++) assert_true(s.hits[i] >= 1);
    cairn_free(s.hits);
}

static void foreach_visits_each_key_once(void **state)
{
    fixture *f = *state;
    enum { N = 5000 };
    char k[32];
    for (int i = 0; i < N; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "v", 1, KS_NO_EXPIRE);
    }
    struct seen s = {cairn_calloc(N, 1), N};
    ks_foreach(f->ks, seen_cb, &s);
    for (int i = 0; i < N; i++) assert_int_equal(s.hits[i], 1);
    cairn_free(s.hits);
}

static void random_returns_present_keys_and_null_when_empty(void **state)
{
    fixture *f = *state;
    assert_null(ks_random(f->ks, rnd));
    char k[32];
    for (int i = 0; i < 100; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "v", 1, KS_NO_EXPIRE);
    }
    struct seen s = {cairn_calloc(100, 1), 100};
    for (int i = 0; i < 5000; i++) seen_cb(&s, ks_random(f->ks, rnd));
    int distinct = 0;
    for (int i = 0; i < 100; i++) distinct += s.hits[i] > 0;
    assert_true(distinct > 90);
    cairn_free(s.hits);
}

/* Growing to a million keys never makes one insert or lookup do more than
 * a bounded amount of rehashing work (no O(n) pause). */
static void growth_work_per_call_is_bounded(void **state)
{
    fixture *f = *state;
    char k[32];
    for (int i = 0; i < 1000000; i++) {
        key_of(k, sizeof(k), i);
        ks_set_str(f->ks, k, strlen(k), "", 0, KS_NO_EXPIRE);
    }
    assert_int_equal(ks_size(f->ks), 1000000);
    /* one bucket moved plus at most 10 empty buckets skipped */
    assert_true(ks_max_rehash_work(f->ks) <= 11);
    for (int i = 0; i < 1000000; i += 997) {
        key_of(k, sizeof(k), i);
        assert_non_null(ks_find(f->ks, k, strlen(k)));
    }
}

static void flush_empties_and_table_is_reusable(void **state)
{
    fixture *f = *state;
    ks_set_str(f->ks, "a", 1, "v", 1, 10);
    ks_add_hash(f->ks, "h", 1);
    ks_flush(f->ks);
    assert_int_equal(ks_size(f->ks), 0);
    assert_int_equal(ks_expires_count(f->ks), 0);
    ks_set_str(f->ks, "a", 1, "v", 1, KS_NO_EXPIRE);
    assert_int_equal(ks_size(f->ks), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(set_then_find_returns_value, setup, teardown),
        cmocka_unit_test_setup_teardown(binary_keys_are_distinct, setup, teardown),
        cmocka_unit_test_setup_teardown(overwrite_keeps_one_entry_and_replaces_type, setup, teardown),
        cmocka_unit_test_setup_teardown(keepttl_and_expire_changes_track_expiring_set, setup, teardown),
        cmocka_unit_test_setup_teardown(expiring_set_survives_many_moves, setup, teardown),
        cmocka_unit_test_setup_teardown(resize_str_keeps_prefix_and_zero_fills, setup, teardown),
        cmocka_unit_test_setup_teardown(rename_moves_value_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(hash_fields_set_update_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(scan_sees_every_key_while_table_grows, setup, teardown),
        cmocka_unit_test_setup_teardown(scan_sees_every_key_while_table_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(foreach_visits_each_key_once, setup, teardown),
        cmocka_unit_test_setup_teardown(random_returns_present_keys_and_null_when_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(growth_work_per_call_is_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(flush_empties_and_table_is_reusable, setup, teardown),
    };
    return cmocka_run_group_tests_name("keyspace", tests, NULL, NULL);
}
