/*
 * test_wal.c — lib/wal: the record codec and segment files.
 *
 * Covers: encode/decode round trip, every strict prefix is EAGAIN, a flipped
 * bit is ECORRUPT, the payload limit; many records across a reopened
 * segment; a torn tail at every cut point of the last record; a flipped byte
 * at every position of a mid-file record (never torn); a flipped length
 * field; a truncated header; an empty segment; a zero-filled tail
 * (preallocation) after whole and partial records; a bad payload checksum
 * in the last record; LSN gap, disorder and mismatch with the header; a
 * damaged segment header; after_lsn skipping; a callback stopping the scan;
 * wal_list ordering and ignoring unrelated files; refusing to overwrite a
 * segment; recovery (truncate a torn tail, append, read clean); a 1 MB
 * payload.
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

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/mem.h"
#include "lib/wal.h"

/* ---- fixture -------------------------------------------------------------- */

typedef struct fx {
    char dir[64];
    /* what the read callback saw */
    uint64_t *lsns;
    size_t n, cap;
    bool payload_ok; /* every payload matched payload_for(lsn) */
} fx;

static int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/cairn-wal-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->payload_ok = true;
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
    free(f->lsns);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

/* The deterministic payload of record `lsn`: its length varies (0 included)
 * and its bytes are not all zero. */
static size_t payload_len(uint64_t lsn) { return lsn % 11 == 0 ? 0 : (size_t)(lsn * 37 % 300) + 1; }

static void payload_fill(uint64_t lsn, char *p, size_t len)
{
    for (size_t j = 0; j < len; j++) p[j] = (char)(lsn * 31 + j * 7 + 1);
}

static void encode_lsn(cairn_buf *b, uint64_t lsn)
{
    char p[512];
    size_t len = payload_len(lsn);
    payload_fill(lsn, p, len);
    wal_encode(b, lsn, 0, p, len);
}

static int collect_cb(void *arg, const wal_rec *rec)
{
    fx *f = arg;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 64;
        f->lsns = realloc(f->lsns, f->cap * sizeof(*f->lsns));
    }
    f->lsns[f->n++] = rec->lsn;
    char p[512];
    size_t len = payload_len(rec->lsn);
    payload_fill(rec->lsn, p, len);
    if (rec->type != 0 || rec->len != len || (len && memcmp(p, rec->payload, len) != 0))
        f->payload_ok = false;
    return 0;
}

static void collect_reset(fx *f)
{
    f->n = 0;
    f->payload_ok = true;
}

/* Records seen are exactly first..last, in order, with the right payloads. */
static void assert_seen(fx *f, uint64_t first, uint64_t last)
{
    assert_true(f->payload_ok);
    assert_int_equal(f->n, last + 1 - first);
    for (size_t i = 0; i < f->n; i++) assert_int_equal(f->lsns[i], first + i);
}

static void write_all(int fd, const void *p, size_t n)
{
    assert_int_equal(write(fd, p, n), (ssize_t)n);
}

/* A segment at first_lsn holding records first..first+count-1; offs[i]
 * receives the offset of record i (offs may be NULL).  Returns the path
 * (free with cairn_free). */
static char *make_segment(fx *f, uint64_t first, size_t count, uint64_t *offs)
{
    char *path;
    int fd = wal_create_segment(f->dir, first, &path);
    assert_true(fd >= 0);
    cairn_buf b;
    buf_init(&b);
    for (size_t i = 0; i < count; i++) {
        if (offs) offs[i] = WAL_SEG_HDR_SIZE + b.len;
        encode_lsn(&b, first + i);
    }
    write_all(fd, b.data, b.len);
    close(fd);
    buf_close(&b);
    return path;
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
    write_all(fd, p, len);
    close(fd);
}

static void append_bytes(const char *path, const void *p, size_t len)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    write_all(fd, p, len);
    close(fd);
}

static int read_seg(fx *f, const char *path, uint64_t after, wal_scan *res)
{
    collect_reset(f);
    return wal_read_segment(path, after, collect_cb, f, res);
}

/* ---- codec ---------------------------------------------------------------- */

static void encode_decode_round_trip(void **state)
{
    (void)state;
    cairn_buf b;
    buf_init(&b);
    wal_encode(&b, 7, 0, "SET k v", 7);
    wal_encode(&b, 8, 3, NULL, 0);
    wal_encode(&b, 9, 0, "\0\r\n\xff", 4);
    assert_int_equal(b.len, 3 * WAL_REC_HDR_SIZE + 11);

    wal_rec r;
    size_t used, at = 0;
    assert_int_equal(wal_decode(b.data, b.len, 1024, &r, &used), 0);
    assert_int_equal(r.lsn, 7);
    assert_int_equal(r.type, 0);
    assert_int_equal(r.len, 7);
    assert_memory_equal(r.payload, "SET k v", 7);
    assert_ptr_equal(r.payload, b.data + WAL_REC_HDR_SIZE);
    assert_int_equal(used, WAL_REC_HDR_SIZE + 7);
    at += used;
    assert_int_equal(wal_decode(b.data + at, b.len - at, 1024, &r, &used), 0);
    assert_int_equal(r.lsn, 8);
    assert_int_equal(r.type, 3);
    assert_int_equal(r.len, 0);
    at += used;
    assert_int_equal(wal_decode(b.data + at, b.len - at, 1024, &r, &used), 0);
    assert_int_equal(r.lsn, 9);
    assert_memory_equal(r.payload, "\0\r\n\xff", 4);
    assert_int_equal(at + used, b.len);
    buf_close(&b);
}

static void decode_every_prefix_needs_more(void **state)
{
    (void)state;
    cairn_buf b;
    buf_init(&b);
    wal_encode(&b, 42, 0, "hello world", 11);
    wal_rec r;
    size_t used;
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(wal_decode(b.data, cut, 1024, &r, &used), CAIRN_EAGAIN);
    assert_int_equal(wal_decode(b.data, b.len, 1024, &r, &used), 0);
    buf_close(&b);
}

static void decode_flipped_bit_is_corrupt(void **state)
{
    (void)state;
    cairn_buf b;
    buf_init(&b);
    wal_encode(&b, 42, 0, "hello world", 11);
    wal_rec r;
    size_t used;
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (char)(1 << bit);
            assert_int_equal(wal_decode(b.data, b.len, 1024, &r, &used), CAIRN_ECORRUPT);
            b.data[i] ^= (char)(1 << bit);
        }
    }
    buf_close(&b);
}

static void decode_payload_over_limit(void **state)
{
    (void)state;
    cairn_buf b;
    buf_init(&b);
    wal_encode(&b, 1, 0, "0123456789", 10);
    wal_rec r;
    size_t used;
    assert_int_equal(wal_decode(b.data, b.len, 9, &r, &used), CAIRN_ELIMIT);
    /* Decided from the header alone, before the payload arrives. */
    assert_int_equal(wal_decode(b.data, WAL_REC_HDR_SIZE, 9, &r, &used), CAIRN_ELIMIT);
    assert_int_equal(wal_decode(b.data, b.len, 10, &r, &used), 0);
    buf_close(&b);
}

/* ---- segments: clean cases ---------------------------------------------- */

static void empty_segment(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 100, 0, NULL);
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_false(res.torn);
    assert_int_equal(res.first_lsn, 100);
    assert_int_equal(res.last_lsn, 99);
    assert_int_equal(res.valid_end, WAL_SEG_HDR_SIZE);
    assert_int_equal(f->n, 0);
    cairn_free(path);
}

static void many_records_across_reopened_segment(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 1, 1000, NULL);
    /* A restarted writer appends to the same segment. */
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    cairn_buf b;
    buf_init(&b);
    for (uint64_t lsn = 1001; lsn <= 3000; lsn++) encode_lsn(&b, lsn);
    write_all(fd, b.data, b.len);
    close(fd);
    buf_close(&b);

    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_false(res.torn);
    assert_int_equal(res.first_lsn, 1);
    assert_int_equal(res.last_lsn, 3000);
    assert_int_equal(res.valid_end, (uint64_t)st.st_size);
    assert_seen(f, 1, 3000);
    cairn_free(path);
}

static void after_lsn_skips_older_records(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 10, 20, NULL);
    wal_scan res;
    assert_int_equal(read_seg(f, path, 14, &res), 0);
    assert_seen(f, 15, 29);
    assert_int_equal(res.last_lsn, 29); /* the segment's last, not the last delivered */
    assert_int_equal(read_seg(f, path, 29, &res), 0);
    assert_int_equal(f->n, 0);
    assert_int_equal(res.last_lsn, 29);
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_seen(f, 10, 29);
    cairn_free(path);
}

static int stop_at_5(void *arg, const wal_rec *rec)
{
    collect_cb(arg, rec);
    return rec->lsn == 5 ? -42 : 0;
}

static void callback_error_stops_scan(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 1, 10, NULL);
    wal_scan res;
    collect_reset(f);
    assert_int_equal(wal_read_segment(path, 0, stop_at_5, f, &res), -42);
    assert_seen(f, 1, 5);
    cairn_free(path);
}

/* A callback for one_megabyte_payload: checks record 2 against `big`. */
typedef struct big_check {
    const char *want;
    size_t len;
    uint64_t n;
    bool ok;
} big_check;

static int big_cb(void *arg, const wal_rec *rec)
{
    big_check *c = arg;
    c->n++;
    if (rec->lsn != c->n) c->ok = false;
    if (rec->lsn == 2 && (rec->len != c->len || memcmp(rec->payload, c->want, c->len) != 0))
        c->ok = false;
    if (rec->lsn != 2 && rec->len != payload_len(rec->lsn)) c->ok = false;
    return 0;
}

static void one_megabyte_payload(void **state)
{
    fx *f = *state;
    size_t big = 1 << 20;
    char *p = malloc(big);
    for (size_t i = 0; i < big; i++) p[i] = (char)((i * 2654435761u) >> 13);
    char *path;
    int fd = wal_create_segment(f->dir, 1, &path);
    assert_true(fd >= 0);
    cairn_buf b;
    buf_init(&b);
    encode_lsn(&b, 1);
    wal_encode(&b, 2, 0, p, big);
    encode_lsn(&b, 3);
    write_all(fd, b.data, b.len);
    close(fd);

    big_check c = { .want = p, .len = big, .ok = true };
    wal_scan res;
    assert_int_equal(wal_read_segment(path, 0, big_cb, &c, &res), 0);
    assert_true(c.ok);
    assert_int_equal(c.n, 3);
    assert_false(res.torn);
    assert_int_equal(res.valid_end, WAL_SEG_HDR_SIZE + b.len);

    /* Cut inside the big payload: torn, the first record survives. */
    assert_int_equal(truncate(path, (off_t)(WAL_SEG_HDR_SIZE + b.len - 100000)), 0);
    c = (big_check){ .want = p, .len = big, .ok = true };
    assert_int_equal(wal_read_segment(path, 0, big_cb, &c, &res), 0);
    assert_true(res.torn);
    assert_int_equal(c.n, 1);
    assert_int_equal(res.last_lsn, 1);
    assert_int_equal(res.valid_end, WAL_SEG_HDR_SIZE + WAL_REC_HDR_SIZE + payload_len(1));

    buf_close(&b);
    cairn_free(path);
    free(p);
}

/* ---- segments: torn tails ------------------------------------------------- */

static void torn_tail_at_every_cut_point(void **state)
{
    fx *f = *state;
    uint64_t offs[6];
    char *path = make_segment(f, 1, 6, offs); /* record 6 has a 223-byte payload */
    size_t len;
    char *img = slurp(path, &len);
    uint64_t last = offs[5];
    assert_true(len - last > WAL_REC_HDR_SIZE + 100);

    for (size_t cut = last; cut < len; cut++) {
        spit(path, img, cut);
        wal_scan res;
        assert_int_equal(read_seg(f, path, 0, &res), 0);
        assert_seen(f, 1, 5);
        assert_int_equal(res.last_lsn, 5);
        assert_int_equal(res.valid_end, last);
        /* Cutting exactly at a record boundary leaves a clean log. */
        assert_int_equal(res.torn, cut != last);
        if (res.torn) assert_non_null(strstr(res.msg, path));
    }
    free(img);
    cairn_free(path);
}

static void truncated_inside_segment_header(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 77, 3, NULL);
    size_t len;
    char *img = slurp(path, &len);
    for (size_t cut = 0; cut < WAL_SEG_HDR_SIZE; cut++) {
        spit(path, img, cut);
        wal_scan res;
        assert_int_equal(read_seg(f, path, 0, &res), 0);
        assert_true(res.torn);
        assert_int_equal(res.valid_end, 0);
        assert_int_equal(res.first_lsn, 77); /* from the file name */
        assert_int_equal(res.last_lsn, 76);
        assert_int_equal(f->n, 0);
    }
    free(img);
    cairn_free(path);
}

static void zero_filled_tail_is_torn(void **state)
{
    fx *f = *state;
    uint64_t offs[4];
    char *path = make_segment(f, 1, 4, offs);
    size_t len;
    char *img = slurp(path, &len);
    static const char zeros[8192];

    /* Preallocated space after whole records. */
    append_bytes(path, zeros, sizeof(zeros));
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, len);
    assert_seen(f, 1, 4);

    /* The last record's header reached the disk, its payload did not. */
    spit(path, img, len);
    size_t plen = len - offs[3] - WAL_REC_HDR_SIZE;
    memset(img + offs[3] + WAL_REC_HDR_SIZE, 0, plen);
    spit(path, img, len);
    append_bytes(path, zeros, sizeof(zeros));
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, offs[3]);
    assert_seen(f, 1, 3);

    /* Half a header, then zeros. */
    memset(img + offs[3] + 10, 0, len - offs[3] - 10);
    spit(path, img, len);
    append_bytes(path, zeros, sizeof(zeros));
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, offs[3]);
    assert_seen(f, 1, 3);

    free(img);
    cairn_free(path);
}

static void bad_payload_checksum_in_last_record_is_torn(void **state)
{
    fx *f = *state;
    uint64_t offs[3];
    char *path = make_segment(f, 1, 3, offs);
    size_t len;
    char *img = slurp(path, &len);
    img[len - 1] ^= 0x40; /* the file ends exactly where the record does */
    spit(path, img, len);
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_true(res.torn);
    assert_int_equal(res.valid_end, offs[2]);
    assert_seen(f, 1, 2);
    free(img);
    cairn_free(path);
}

static void recovery_truncates_torn_tail_and_appends(void **state)
{
    fx *f = *state;
    uint64_t offs[5];
    char *path = make_segment(f, 1, 5, offs);
    assert_int_equal(truncate(path, (off_t)offs[4] + 7), 0);
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_true(res.torn);
    assert_int_equal(wal_truncate(path, res.valid_end), 0);

    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    cairn_buf b;
    buf_init(&b);
    encode_lsn(&b, res.last_lsn + 1);
    encode_lsn(&b, res.last_lsn + 2);
    write_all(fd, b.data, b.len);
    close(fd);
    buf_close(&b);

    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_false(res.torn);
    assert_seen(f, 1, 6);
    cairn_free(path);
}

/* ---- segments: corruption ------------------------------------------------- */

static void flipped_byte_in_mid_file_record_is_corrupt(void **state)
{
    fx *f = *state;
    uint64_t offs[4];
    char *path = make_segment(f, 1, 4, offs);
    size_t len;
    char *img = slurp(path, &len);
    char want[64];
    snprintf(want, sizeof(want), "at offset %llu", (unsigned long long)offs[1]);

    static const unsigned char flips[] = {0x01, 0x80, 0xff};
    for (uint64_t i = offs[1]; i < offs[2]; i++) {
        for (size_t k = 0; k < sizeof(flips); k++) {
            img[i] ^= (char)flips[k];
            spit(path, img, len);
            wal_scan res;
            assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
            assert_false(res.torn);
            assert_int_equal(res.bad_offset, offs[1]);
            assert_non_null(strstr(res.msg, path));
            assert_non_null(strstr(res.msg, want));
            assert_seen(f, 1, 1); /* records before the damage were delivered */
            img[i] ^= (char)flips[k];
        }
    }
    free(img);
    cairn_free(path);
}

static void flipped_length_field_is_corrupt(void **state)
{
    fx *f = *state;
    uint64_t offs[4];
    char *path = make_segment(f, 1, 4, offs);
    size_t len;
    char *img = slurp(path, &len);
    wal_scan res;

    /* Longer: would run past EOF (a torn tail, if it were trusted). */
    img[offs[1] + 4 + 3] ^= 0x10;
    spit(path, img, len);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_false(res.torn);
    assert_int_equal(res.bad_offset, offs[1]);
    assert_non_null(strstr(res.msg, "header checksum"));
    img[offs[1] + 4 + 3] ^= 0x10;

    /* Shorter by one. */
    img[offs[1] + 4] ^= 0x01;
    spit(path, img, len);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, offs[1]);
    img[offs[1] + 4] ^= 0x01;

    /* In the last record: payload bytes follow the bad header, so it is
     * damage, not a torn write. */
    img[offs[3] + 5] ^= 0x01;
    spit(path, img, len);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, offs[3]);
    assert_seen(f, 1, 3);

    free(img);
    cairn_free(path);
}

/* Write a segment whose records carry the given LSNs. */
static char *segment_with_lsns(fx *f, uint64_t first, const uint64_t *lsns, size_t n,
                               uint64_t *offs)
{
    char *path;
    int fd = wal_create_segment(f->dir, first, &path);
    assert_true(fd >= 0);
    cairn_buf b;
    buf_init(&b);
    for (size_t i = 0; i < n; i++) {
        offs[i] = WAL_SEG_HDR_SIZE + b.len;
        encode_lsn(&b, lsns[i]);
    }
    write_all(fd, b.data, b.len);
    close(fd);
    buf_close(&b);
    return path;
}

static void lsn_gap_is_corrupt(void **state)
{
    fx *f = *state;
    uint64_t offs[4];
    wal_scan res;

    static const uint64_t gap[] = {1, 2, 4, 5};
    char *path = segment_with_lsns(f, 1, gap, 4, offs);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, offs[2]);
    assert_non_null(strstr(res.msg, "LSN 4"));
    assert_seen(f, 1, 2);
    unlink(path);
    cairn_free(path);

    static const uint64_t repeat[] = {1, 2, 2, 3};
    path = segment_with_lsns(f, 1, repeat, 4, offs);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, offs[2]);
    unlink(path);
    cairn_free(path);

    /* Even as the very last record, a well-formed record with the wrong LSN
     * is not a torn write. */
    static const uint64_t last[] = {1, 2, 3, 9};
    path = segment_with_lsns(f, 1, last, 4, offs);
    assert_int_equal(truncate(path, (off_t)offs[3] + 30), 0);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, offs[3]);
    unlink(path);
    cairn_free(path);

    /* The first record must carry the header's first LSN. */
    static const uint64_t off_by_one[] = {6, 7};
    path = segment_with_lsns(f, 5, off_by_one, 2, offs);
    assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, WAL_SEG_HDR_SIZE);
    assert_int_equal(f->n, 0);
    cairn_free(path);
}

static void damaged_segment_header_is_corrupt(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 1, 3, NULL);
    size_t len;
    char *img = slurp(path, &len);
    for (size_t i = 0; i < WAL_SEG_HDR_SIZE; i++) {
        img[i] ^= 0x04;
        spit(path, img, len);
        wal_scan res;
        assert_int_equal(read_seg(f, path, 0, &res), CAIRN_ECORRUPT);
        assert_false(res.torn);
        assert_int_equal(res.bad_offset, 0);
        assert_int_equal(f->n, 0);
        img[i] ^= 0x04;
    }
    free(img);
    cairn_free(path);
}

static void header_must_match_file_name(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 1, 3, NULL);
    char other[128];
    snprintf(other, sizeof(other), "%s/wal-00000000000000000002.log", f->dir);
    assert_int_equal(rename(path, other), 0);
    wal_scan res;
    assert_int_equal(read_seg(f, other, 0, &res), CAIRN_ECORRUPT);
    assert_int_equal(res.bad_offset, 0);
    /* Under a name outside the convention, the header alone decides. */
    char plain[128];
    snprintf(plain, sizeof(plain), "%s/copy.log", f->dir);
    assert_int_equal(rename(other, plain), 0);
    assert_int_equal(read_seg(f, plain, 0, &res), 0);
    assert_seen(f, 1, 3);
    cairn_free(path);
}

/* ---- listing and creating ------------------------------------------------- */

static void touch(fx *f, const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    spit(p, "x", 1);
}

static void list_sorts_and_ignores_unrelated_files(void **state)
{
    fx *f = *state;
    wal_seg *segs;
    size_t n;
    assert_int_equal(wal_list(f->dir, &segs, &n), 0);
    assert_int_equal(n, 0);
    assert_null(segs);

    static const uint64_t firsts[] = {100, 1, 20, 18446744073709551615u, 5};
    for (size_t i = 0; i < 5; i++) {
        int fd = wal_create_segment(f->dir, firsts[i], NULL);
        assert_true(fd >= 0);
        close(fd);
    }
    touch(f, "wal-1.log");
    touch(f, "wal-00000000000000000003.log.tmp");
    touch(f, "wal-0000000000000000000x.log");
    touch(f, "wal-99999999999999999999.log"); /* does not fit in 64 bits */
    touch(f, "wal-000000000000000000007.log");
    touch(f, "snapshot.snap");
    touch(f, "WAL-00000000000000000004.log");

    assert_int_equal(wal_list(f->dir, &segs, &n), 0);
    assert_int_equal(n, 5);
    static const uint64_t sorted[] = {1, 5, 20, 100, 18446744073709551615u};
    for (size_t i = 0; i < n; i++) {
        char want[256];
        snprintf(want, sizeof(want), "%s/wal-%020llu.log", f->dir, (unsigned long long)sorted[i]);
        assert_int_equal(segs[i].first_lsn, sorted[i]);
        assert_string_equal(segs[i].path, want);
    }
    wal_segs_free(segs, n);

    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", f->dir);
    assert_int_equal(wal_list(missing, &segs, &n), -ENOENT);
}

static void create_refuses_existing_segment(void **state)
{
    fx *f = *state;
    char *path = make_segment(f, 9, 3, NULL);
    assert_int_equal(wal_create_segment(f->dir, 9, NULL), -EEXIST);
    /* The existing segment is untouched and no temporary file is left. */
    wal_scan res;
    assert_int_equal(read_seg(f, path, 0, &res), 0);
    assert_seen(f, 9, 11);
    wal_seg *segs;
    size_t n;
    assert_int_equal(wal_list(f->dir, &segs, &n), 0);
    assert_int_equal(n, 1);
    wal_segs_free(segs, n);
    char tmp[256];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_equal(access(tmp, F_OK), -1);

    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", f->dir);
    assert_int_equal(wal_create_segment(missing, 1, NULL), -ENOENT);
    cairn_free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(encode_decode_round_trip),
        cmocka_unit_test(decode_every_prefix_needs_more),
        cmocka_unit_test(decode_flipped_bit_is_corrupt),
        cmocka_unit_test(decode_payload_over_limit),
        cmocka_unit_test_setup_teardown(empty_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(many_records_across_reopened_segment, setup, teardown),
        cmocka_unit_test_setup_teardown(after_lsn_skips_older_records, setup, teardown),
        cmocka_unit_test_setup_teardown(callback_error_stops_scan, setup, teardown),
        cmocka_unit_test_setup_teardown(one_megabyte_payload, setup, teardown),
        cmocka_unit_test_setup_teardown(torn_tail_at_every_cut_point, setup, teardown),
        cmocka_unit_test_setup_teardown(truncated_inside_segment_header, setup, teardown),
        cmocka_unit_test_setup_teardown(zero_filled_tail_is_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_payload_checksum_in_last_record_is_torn, setup, teardown),
        cmocka_unit_test_setup_teardown(recovery_truncates_torn_tail_and_appends, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_byte_in_mid_file_record_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(flipped_length_field_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(lsn_gap_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_segment_header_is_corrupt, setup, teardown),
        cmocka_unit_test_setup_teardown(header_must_match_file_name, setup, teardown),
        cmocka_unit_test_setup_teardown(list_sorts_and_ignores_unrelated_files, setup, teardown),
        cmocka_unit_test_setup_teardown(create_refuses_existing_segment, setup, teardown),
    };
    return cmocka_run_group_tests_name("wal", tests, NULL, NULL);
}
