/*
 * test_snap.c — lib/snap: writing and loading snapshots.
 *
 * Covers: round trip of strings (binary, empty key and value, with and
 * without expiry, already expired, large) and hashes (one empty field, a
 * 10k-field hash with expiry, a large field value); an empty keyspace; 100k
 * keys; LSN recorded; overwriting an older snapshot leaves no temporary
 * file; a flipped byte anywhere is ECORRUPT with the path in the message; a
 * file truncated at any length is ECORRUPT; a missing file is -ENOENT; a
 * missing directory fails the write cleanly.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/err.h"
#include "lib/keyspace.h"
#include "lib/snap.h"

/* ---- fixture -------------------------------------------------------------- */

typedef struct fx {
    char dir[64];
    char path[128];
    ks_t *ks;
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/cairn-snap-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/dump.snap", f->dir);
    f->ks = ks_create();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx *f = *state;
    DIR *d = opendir(f->dir);
    if (d) {
        struct dirent *de;
        char p[512];
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(f->dir);
    ks_destroy(f->ks);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* Every field of one hash is in the other with the same value. */
typedef struct hcmp {
    hobj_t *other;
    size_t n;
    bool ok;
} hcmp;

static void hash_field_cmp(void *arg, const char *fl, size_t flen, const char *v, size_t vlen)
{
    hcmp *c = arg;
    const char *ov;
    size_t ovlen;
    c->n++;
    if (!hobj_get(c->other, fl, flen, &ov, &ovlen) || ovlen != vlen || memcmp(ov, v, vlen) != 0)
        c->ok = false;
}

typedef struct kcmp {
    ks_t *other;
    size_t n;
    bool ok;
} kcmp;

static void entry_cmp(void *arg, ks_ent_t *e)
{
    kcmp *c = arg;
    size_t klen;
    const char *k = ks_ent_key(e, &klen);
    ks_ent_t *o = ks_find(c->other, k, klen);
    c->n++;
    if (!o || ks_ent_type(o) != ks_ent_type(e) || ks_ent_expire(o) != ks_ent_expire(e)) {
        c->ok = false;
        return;
    }
    if (ks_ent_type(e) == KS_STRING) {
        size_t a, b;
        const char *va = ks_ent_str(e, &a), *vb = ks_ent_str(o, &b);
        if (a != b || memcmp(va, vb, a) != 0) c->ok = false;
    } else {
        hobj_t *ha = ks_ent_hash(e), *hb = ks_ent_hash(o);
        hcmp h = { hb, 0, true };
        hobj_foreach(ha, hash_field_cmp, &h);
        if (!h.ok || h.n != hobj_len(hb)) c->ok = false;
    }
}

static void assert_ks_equal(ks_t *a, ks_t *b)
{
    assert_int_equal(ks_size(a), ks_size(b));
    assert_int_equal(ks_expires_count(a), ks_expires_count(b));
    kcmp c = { b, 0, true };
    ks_foreach(a, entry_cmp, &c);
    assert_true(c.ok);
    assert_int_equal(c.n, ks_size(a));
}

/* Write f->ks at `lsn`, load it into a fresh keyspace, compare. */
static void round_trip(fx *f, uint64_t lsn)
{
    assert_int_equal(snap_write(f->path, f->ks, lsn, 7, 1700000000000), 0);
    ks_t *back = ks_create();
    uint64_t got = 0;
    uint32_t version = 0;
    char msg[256];
    int rc = snap_load(f->path, back, &got, &version, msg, sizeof(msg));
    if (rc != 0) fail_msg("snap_load: %s (%s)", cairn_strerror(rc), msg);
    assert_int_equal(got, lsn);
    assert_int_equal(version, 7);
    assert_ks_equal(f->ks, back);
    ks_destroy(back);
}

#define SET(ks, k, v, exp) ks_set_str(ks, k, sizeof(k) - 1, v, sizeof(v) - 1, exp)

/* A small keyspace with every kind of entry (for the damage tests). */
static void small_keyspace(ks_t *ks)
{
    SET(ks, "a", "alpha", KS_NO_EXPIRE);
    SET(ks, "b\0in", "x\0\r\n", 1900000000000);
    SET(ks, "", "", KS_NO_EXPIRE);
    ks_ent_t *e = ks_add_hash(ks, "h", 1);
    hobj_set(ks_ent_hash(e), "f1", 2, "v1", 2);
    hobj_set(ks_ent_hash(e), "", 0, "", 0);
    e = ks_add_hash(ks, "hx", 2);
    e = ks_set_expire(ks, e, 1800000000000);
    hobj_set(ks_ent_hash(e), "only", 4, "one", 3);
}

static char *slurp(const char *path, size_t *len)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char *p = malloc((size_t)st.st_size + 1);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(read(fd, p, (size_t)st.st_size), st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return p;
}

static void spit(const char *path, const char *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, len), (ssize_t)len);
    close(fd);
}

/* Load must fail with ECORRUPT, naming the file and an offset. */
static void assert_load_corrupt(fx *f)
{
    ks_t *back = ks_create();
    uint64_t lsn = 0;
    char msg[256];
    assert_int_equal(snap_load(f->path, back, &lsn, NULL, msg, sizeof(msg)), CAIRN_ECORRUPT);
    assert_non_null(strstr(msg, f->path));
    assert_non_null(strstr(msg, "offset"));
    ks_destroy(back);
}

/* ---- round trips ---------------------------------------------------------- */

static void strings_round_trip(void **state)
{
    fx *f = *state;
    SET(f->ks, "plain", "value", KS_NO_EXPIRE);
    SET(f->ks, "bin\0key\xff", "\0\x01\x02\r\n\xff\0", KS_NO_EXPIRE);
    SET(f->ks, "", "empty key", KS_NO_EXPIRE);
    SET(f->ks, "empty value", "", KS_NO_EXPIRE);
    SET(f->ks, "ttl", "v", 1900000000123);
    SET(f->ks, "expired", "v", 1000); /* long past: still loaded */
    SET(f->ks, "negative expiry", "v", -5);
    round_trip(f, 12345);

    ks_t *back = ks_create();
    uint64_t lsn;
    assert_int_equal(snap_load(f->path, back, &lsn, NULL, NULL, 0), 0);
    ks_ent_t *e = ks_find(back, "expired", 7);
    assert_non_null(e);
    assert_int_equal(ks_ent_expire(e), 1000);
    assert_int_equal(ks_expires_count(back), 3);
    ks_destroy(back);
}

static void large_values_round_trip(void **state)
{
    fx *f = *state;
    size_t big = 3u << 20; /* larger than the 64 KB I/O buffer */
    char *v = malloc(big);
    for (size_t i = 0; i < big; i++) v[i] = (char)((i * 2654435761u) >> 11);
    ks_set_str(f->ks, "big", 3, v, big, KS_NO_EXPIRE);
    ks_set_str(f->ks, v, 70000, "long key", 8, 1234); /* a 70 KB key */
    ks_ent_t *e = ks_add_hash(f->ks, "hbig", 4);
    hobj_set(ks_ent_hash(e), "f", 1, v, 200000);
    hobj_set(ks_ent_hash(e), v + 5, 100000, "g", 1);
    SET(f->ks, "small after", "x", KS_NO_EXPIRE);
    round_trip(f, 7);
    free(v);
}

static void hashes_round_trip(void **state)
{
    fx *f = *state;
    ks_ent_t *e = ks_add_hash(f->ks, "one empty field", 15);
    hobj_set(ks_ent_hash(e), "", 0, "", 0);
    e = ks_add_hash(f->ks, "one field", 9);
    hobj_set(ks_ent_hash(e), "f\0", 2, "\0v", 2);

    e = ks_add_hash(f->ks, "big\0hash", 8);
    e = ks_set_expire(f->ks, e, 1950000000000);
    hobj_t *h = ks_ent_hash(e);
    char fl[32], v[64];
    for (int i = 0; i < 10000; i++) {
        int fn = snprintf(fl, sizeof(fl), "field:%d", i);
        int vn = snprintf(v, sizeof(v), "value-%d-%x", i * 7, i);
        hobj_set(h, fl, (size_t)fn, v, (size_t)(i % 13 == 0 ? 0 : vn));
    }
    assert_int_equal(hobj_len(h), 10000);
    SET(f->ks, "string too", "s", KS_NO_EXPIRE);
    round_trip(f, 99);
}

static void empty_keyspace_round_trip(void **state)
{
    fx *f = *state;
    round_trip(f, 0);
    round_trip(f, UINT64_MAX);
}

static void hundred_thousand_keys(void **state)
{
    fx *f = *state;
    char k[32], v[48];
    for (int i = 0; i < 100000; i++) {
        int kn = snprintf(k, sizeof(k), "key:%d", i);
        if (i % 10 == 0) {
            ks_ent_t *e = ks_add_hash(f->ks, k, (size_t)kn);
            for (int j = 0; j < 3; j++) {
                int vn = snprintf(v, sizeof(v), "%d.%d", i, j);
                hobj_set(ks_ent_hash(e), v, (size_t)vn, k, (size_t)kn);
            }
        } else {
            int vn = snprintf(v, sizeof(v), "value:%d:%d", i, i * 31);
            ks_set_str(f->ks, k, (size_t)kn, v, (size_t)vn,
                       i % 3 == 0 ? 1700000000000 + i : KS_NO_EXPIRE);
        }
    }
    assert_int_equal(ks_size(f->ks), 100000);
    round_trip(f, 1u << 20);
}

static void overwrite_replaces_whole_file(void **state)
{
    fx *f = *state;
    small_keyspace(f->ks);
    assert_int_equal(snap_write(f->path, f->ks, 5, 7, 1), 0);
    ks_del(f->ks, "a", 1);
    SET(f->ks, "new", "key", KS_NO_EXPIRE);
    round_trip(f, 6);

    char tmp[160];
    snprintf(tmp, sizeof(tmp), "%s.tmp", f->path);
    assert_int_equal(access(tmp, F_OK), -1);
}

/* ---- damage --------------------------------------------------------------- */

static void flipped_byte_anywhere_is_corrupt(void **state)
{
    fx *f = *state;
    small_keyspace(f->ks);
    assert_int_equal(snap_write(f->path, f->ks, 42, 7, 1700000000000), 0);
    size_t len;
    char *img = slurp(f->path, &len);
    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            img[i] ^= (char)flips[k];
            spit(f->path, img, len);
            assert_load_corrupt(f);
            img[i] ^= (char)flips[k];
        }
    }
    free(img);
}

static void truncated_file_is_corrupt(void **state)
{
    fx *f = *state;
    small_keyspace(f->ks);
    assert_int_equal(snap_write(f->path, f->ks, 42, 7, 1700000000000), 0);
    size_t len;
    char *img = slurp(f->path, &len);
    for (size_t cut = 0; cut < len; cut++) {
        spit(f->path, img, cut);
        assert_load_corrupt(f);
    }
    /* Extra bytes at the end are damage too. */
    img = realloc(img, len + 1);
    img[len] = 0;
    spit(f->path, img, len + 1);
    assert_load_corrupt(f);
    free(img);
}

static void missing_file_is_enoent(void **state)
{
    fx *f = *state;
    uint64_t lsn = 7;
    char msg[256];
    assert_int_equal(snap_load(f->path, f->ks, &lsn, NULL, msg, sizeof(msg)), -ENOENT);
    assert_int_equal(lsn, 7);
    assert_int_equal(ks_size(f->ks), 0);
}

static void write_into_missing_dir_fails(void **state)
{
    fx *f = *state;
    char p[160];
    snprintf(p, sizeof(p), "%s/nope/dump.snap", f->dir);
    SET(f->ks, "a", "b", KS_NO_EXPIRE);
    assert_int_equal(snap_write(p, f->ks, 1, 7, 1), -ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(strings_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(large_values_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(hashes_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_keyspace_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(hundred_thousand_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(overwrite_replaces_whole_file, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_anywhere_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_file_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_file_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(write_into_missing_dir_fails, setup, teardown),
    };
    return cmocka_run_group_tests_name("snap", tests, NULL, NULL);
}
