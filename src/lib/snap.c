/*
 * snap.c — writing and loading snapshots (format in snap.h).
 *
 * Writing streams entries from ks_foreach through a 64 KB buffer, hashing
 * each buffer as it goes out, so memory stays flat however large the
 * keyspace; the rename at the end makes the new snapshot appear whole or not
 * at all.  Loading reads through a buffer of the same size (grown only to
 * hold one large key or value), hashing every byte it consumes, and checks
 * the trailer's checksum last.  Every length read from the file is checked
 * against the bytes the file still holds before it is used, so a corrupt
 * length can neither make the loader allocate more than the file's size nor
 * read past its end.
 */
#include "lib/snap.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack: no malloc'd hash state */
#include <xxhash.h>

#include "lib/err.h"
#include "lib/mem.h"

#define SNAP_MAGIC "CAIRNSNP"
#define T_STRING 1
#define T_HASH 2
#define T_END 0xFF
#define ENT_FIXED 13 /* type + expiry + key length */
#define TRAILER 17   /* end marker + entry count + checksum */
#define IOBUF (64u * 1024)

/* ---- little-endian fields ---- */

static void put32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (char)(v >> (8 * i));
}

static void put64(char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (char)(v >> (8 * i));
}

static uint32_t get32(const char *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)(unsigned char)p[i] << (8 * i);
    return v;
}

static uint64_t get64(const char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)(unsigned char)p[i] << (8 * i);
    return v;
}

/* ---- writing ---- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* fsync the directory holding `path`, making a rename durable.  Some file
 * systems refuse fsync on a directory with EINVAL; nothing more to do there. */
static int fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? cairn_strndup(path, slash == path ? 1 : (size_t)(slash - path))
                      : cairn_strndup(".", 1);
    int rc = 0, fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
    } else {
        if (fsync(fd) < 0 && errno != EINVAL) rc = -errno;
        close(fd);
    }
    cairn_free(dir);
    return rc;
}

/* The writer's state.  ks_foreach and hobj_foreach callbacks cannot stop
 * the iteration, so the first error sticks in `err` and later puts do
 * nothing. */
typedef struct wr {
    int fd;
    int err;
    char *buf;
    size_t len;
    uint64_t count; /* entries written */
    XXH3_state_t hs; /* over every byte written so far */
} wr;

static void wr_flush(wr *w)
{
    if (w->err || w->len == 0) return;
    XXH3_64bits_update(&w->hs, w->buf, w->len);
    w->err = write_all(w->fd, w->buf, w->len);
    w->len = 0;
}

static void wr_put(wr *w, const void *p, size_t n)
{
    if (w->err) return;
    if (n > IOBUF - w->len) {
        wr_flush(w);
        if (w->err) return;
        if (n >= IOBUF) { /* a large value goes straight out, uncopied */
            XXH3_64bits_update(&w->hs, p, n);
            w->err = write_all(w->fd, p, n);
            return;
        }
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void wr_u32(wr *w, size_t v)
{
    char b[4];
    if (v > UINT32_MAX) {
        if (!w->err) w->err = CAIRN_ELIMIT;
        return;
    }
    put32(b, (uint32_t)v);
    wr_put(w, b, 4);
}

static void wr_u64(wr *w, uint64_t v)
{
    char b[8];
    put64(b, v);
    wr_put(w, b, 8);
}

static void wr_field(void *arg, const char *f, size_t flen, const char *v, size_t vlen)
{
    wr *w = arg;
    wr_u32(w, flen);
    wr_put(w, f, flen);
    wr_u32(w, vlen);
    wr_put(w, v, vlen);
}

static void wr_entry(void *arg, ks_ent_t *e)
{
    wr *w = arg;
    if (w->err) return;
    size_t klen, vlen;
    const char *key = ks_ent_key(e, &klen);
    enum ks_type type = ks_ent_type(e);
    char t = type == KS_HASH ? T_HASH : T_STRING;
    assert(type == KS_STRING || type == KS_HASH);
    wr_put(w, &t, 1);
    wr_u64(w, (uint64_t)ks_ent_expire(e));
    wr_u32(w, klen);
    wr_put(w, key, klen);
    if (type == KS_STRING) {
        const char *v = ks_ent_str(e, &vlen);
        wr_u32(w, vlen);
        wr_put(w, v, vlen);
    } else {
        hobj_t *h = ks_ent_hash(e);
        wr_u32(w, hobj_len(h));
        hobj_foreach(h, wr_field, w);
    }
    w->count++;
}

int snap_write(const char *path, ks_t *ks, uint64_t lsn, uint32_t version, int64_t now_ms)
{
    size_t plen = strlen(path);
    char *tmp = cairn_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    wr w = { .fd = -1 };
    XXH3_64bits_reset(&w.hs);
    int rc;

    w.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w.fd < 0) {
        rc = -errno;
        goto fail_tmp;
    }
    w.buf = cairn_malloc(IOBUF);

    char hdr[SNAP_HDR_SIZE];
    memcpy(hdr, SNAP_MAGIC, 8);
    put32(hdr + 8, SNAP_VERSION);
    put32(hdr + 12, version);
    put64(hdr + 16, lsn);
    put64(hdr + 24, (uint64_t)now_ms);
    put64(hdr + 32, XXH3_64bits(hdr, 32));
    wr_put(&w, hdr, sizeof(hdr));

    ks_foreach(ks, wr_entry, &w);

    char end = (char)T_END;
    wr_put(&w, &end, 1);
    wr_u64(&w, w.count);
    wr_flush(&w);
    if ((rc = w.err) < 0) goto fail_fd;
    char sum[8];
    put64(sum, XXH3_64bits_digest(&w.hs));
    if ((rc = write_all(w.fd, sum, 8)) < 0) goto fail_fd;
    if (fsync(w.fd) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    if (close(w.fd) < 0) {
        w.fd = -1;
        rc = -errno;
        goto fail_fd;
    }
    w.fd = -1;
    if (rename(tmp, path) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    rc = fsync_parent(path);
    cairn_free(w.buf);
    cairn_free(tmp);
    return rc;

fail_fd:
    if (w.fd >= 0) close(w.fd);
    unlink(tmp);
    cairn_free(w.buf);
fail_tmp:
    cairn_free(tmp);
    return rc;
}

/* ---- loading ---- */

/* buf[start..end) holds unread bytes, the first at file offset `off`.  The
 * body is everything before the final checksum: [0, body_end). */
typedef struct rd {
    int fd;
    char *buf;
    size_t cap, start, end;
    uint64_t off, body_end;
    XXH3_state_t hs; /* over every byte consumed */
    const char *path;
    char *msg;
    size_t msglen;
} rd;

static int rd_corrupt(rd *r, uint64_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int rd_corrupt(rd *r, uint64_t at, const char *fmt, ...)
{
    if (r->msg && r->msglen) {
        int n = snprintf(r->msg, r->msglen, "%s: ", r->path);
        if (n >= 0 && (size_t)n < r->msglen) {
            va_list ap;
            va_start(ap, fmt);
            int m = vsnprintf(r->msg + n, r->msglen - (size_t)n, fmt, ap);
            va_end(ap);
            if (m >= 0 && (size_t)(n + m) < r->msglen)
                snprintf(r->msg + n + m, r->msglen - (size_t)(n + m), " at offset %" PRIu64, at);
        }
    }
    return CAIRN_ECORRUPT;
}

/* Make n unread bytes available without consuming them; *p points at them
 * until the next rd_need or rd_take.  `limit` is the file offset they must
 * end by.  Returns 0, CAIRN_ECORRUPT if the file ends first, or -errno. */
static int rd_need_to(rd *r, size_t n, uint64_t limit, const char **p)
{
    if (n > limit - r->off)
        return rd_corrupt(r, r->off, "file truncated: %zu bytes needed, %" PRIu64 " left", n,
                          limit - r->off);
    if (r->end - r->start < n) {
        if (r->cap - r->start < n) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
            if (r->cap < n) {
                r->buf = cairn_realloc(r->buf, n);
                r->cap = n;
            }
        }
        while (r->end - r->start < n) {
            ssize_t k = read(r->fd, r->buf + r->end, r->cap - r->end);
            if (k < 0) {
                if (errno == EINTR) continue;
                return -errno;
            }
            if (k == 0) return -EIO; /* shorter than fstat said: it shrank under us */
            r->end += (size_t)k;
        }
    }
    *p = r->buf + r->start;
    return 0;
}

static int rd_need(rd *r, size_t n, const char **p) { return rd_need_to(r, n, r->body_end, p); }

/* Consume n bytes made available by rd_need, hashing them.  Pointers from
 * rd_need stay valid. */
static void rd_take(rd *r, size_t n)
{
    assert(n <= r->end - r->start);
    XXH3_64bits_update(&r->hs, r->buf + r->start, n);
    r->start += n;
    r->off += n;
}

/* After a large item, give its memory back.  Moves the unread bytes: call
 * only between items, when no pointer from rd_need is held. */
static void rd_shrink(rd *r)
{
    size_t have = r->end - r->start;
    if (r->cap <= 2 * IOBUF || have > IOBUF) return;
    memmove(r->buf, r->buf + r->start, have);
    r->start = 0;
    r->end = have;
    r->buf = cairn_realloc(r->buf, IOBUF);
    r->cap = IOBUF;
}

/* Read a length-prefixed item (4-byte length, then bytes) that starts `at`
 * bytes into the unread data, keeping what precedes it available.  Sets
 * *len and returns 0 with *p pointing at the unread data (so the item is at
 * *p + at + 4). */
static int rd_item(rd *r, size_t at, const char **p, size_t *len)
{
    int rc = rd_need(r, at + 4, p);
    if (rc < 0) return rc;
    *len = get32(*p + at);
    return rd_need(r, at + 4 + *len, p);
}

static int load_hash(rd *r, ks_t *ks, uint64_t ent_off, const char *key, size_t klen, int64_t exp)
{
    const char *p;
    int rc;
    if (ks_find(ks, key, klen)) return rd_corrupt(r, ent_off, "duplicate key");
    ks_ent_t *e = ks_add_hash(ks, key, klen);
    if (exp != KS_NO_EXPIRE) e = ks_set_expire(ks, e, exp);
    hobj_t *h = ks_ent_hash(e);
    rd_take(r, klen);

    if ((rc = rd_need(r, 4, &p)) < 0) return rc;
    uint32_t n = get32(p);
    rd_take(r, 4);
    if (n > (r->body_end - r->off) / 8) /* each field takes 8 bytes at least */
        return rd_corrupt(r, ent_off, "hash field count %" PRIu32 " larger than the file", n);
    for (uint32_t i = 0; i < n; i++) {
        size_t flen, vlen;
        uint64_t at = r->off;
        rd_shrink(r);
        if ((rc = rd_item(r, 0, &p, &flen)) < 0) return rc;
        if ((rc = rd_item(r, 4 + flen, &p, &vlen)) < 0) return rc;
        if (hobj_set(h, p + 4, flen, p + 4 + flen + 4, vlen) == 0)
            return rd_corrupt(r, at, "duplicate hash field");
        rd_take(r, 4 + flen + 4 + vlen);
    }
    return 0;
}

static int load_entries(rd *r, ks_t *ks, uint64_t *count)
{
    const char *p;
    int rc;
    for (*count = 0;; ++*count) {
        uint64_t ent_off = r->off;
        rd_shrink(r);
        if ((rc = rd_need(r, 1, &p)) < 0) return rc;
        if ((unsigned char)p[0] == T_END) {
            rd_take(r, 1);
            return 0;
        }
        if ((rc = rd_need(r, ENT_FIXED, &p)) < 0) return rc;
        int type = (unsigned char)p[0];
        int64_t exp = (int64_t)get64(p + 1);
        if (type != T_STRING && type != T_HASH)
            return rd_corrupt(r, ent_off, "unknown entry type %d", type);
        if (exp == KS_KEEPTTL) return rd_corrupt(r, ent_off, "invalid expiry");

        size_t klen, vlen;
        if ((rc = rd_item(r, 1 + 8, &p, &klen)) < 0) return rc;
        rd_take(r, ENT_FIXED);
        if (type == T_HASH) {
            if ((rc = load_hash(r, ks, ent_off, p + ENT_FIXED, klen, exp)) < 0) return rc;
            continue;
        }
        if ((rc = rd_item(r, klen, &p, &vlen)) < 0) return rc;
        if (ks_find(ks, p, klen)) return rd_corrupt(r, ent_off, "duplicate key");
        ks_set_str(ks, p, klen, p + klen + 4, vlen, exp);
        rd_take(r, klen + 4 + vlen);
    }
}

int snap_load(const char *path, ks_t *ks, uint64_t *lsn, uint32_t *version, char *msg, size_t msglen)
{
    assert(ks_size(ks) == 0);
    if (msg && msglen) msg[0] = '\0';
    rd r = { .fd = -1, .path = path, .msg = msg, .msglen = msglen };
    XXH3_64bits_reset(&r.hs);
    const char *p;
    int rc;

    r.fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        rc = -errno;
        if (msg && msglen) snprintf(msg, msglen, "%s: %s", path, strerror(-rc));
        return rc;
    }
    r.buf = cairn_malloc(IOBUF);
    r.cap = IOBUF;
    struct stat st;
    if (fstat(r.fd, &st) < 0) {
        rc = -errno;
        goto out;
    }
    uint64_t size = (uint64_t)st.st_size;
    if (size < SNAP_HDR_SIZE + TRAILER) {
        rc = rd_corrupt(&r, 0, "file too short (%" PRIu64 " bytes)", size);
        goto out;
    }
    r.body_end = size - 8;

    if ((rc = rd_need(&r, SNAP_HDR_SIZE, &p)) < 0) goto out;
    if (memcmp(p, SNAP_MAGIC, 8) != 0) {
        rc = rd_corrupt(&r, 0, "bad magic");
        goto out;
    }
    if (get64(p + 32) != XXH3_64bits(p, 32)) {
        rc = rd_corrupt(&r, 0, "bad header checksum");
        goto out;
    }
    if (get32(p + 8) != SNAP_VERSION) {
        rc = rd_corrupt(&r, 8, "unsupported version %" PRIu32, get32(p + 8));
        goto out;
    }
    uint64_t snap_lsn = get64(p + 16);
    uint32_t snap_entry_version = get32(p + 12);
    rd_take(&r, SNAP_HDR_SIZE);

    uint64_t count;
    if ((rc = load_entries(&r, ks, &count)) < 0) goto out;
    if ((rc = rd_need(&r, 8, &p)) < 0) goto out;
    uint64_t want_count = get64(p);
    rd_take(&r, 8);
    if (r.off != r.body_end) {
        rc = rd_corrupt(&r, r.off, "%" PRIu64 " stray bytes after the end marker", r.body_end - r.off);
        goto out;
    }
    uint64_t sum = XXH3_64bits_digest(&r.hs);
    if ((rc = rd_need_to(&r, 8, size, &p)) < 0) goto out;
    if (get64(p) != sum) {
        rc = rd_corrupt(&r, r.off, "checksum mismatch");
        goto out;
    }
    if (want_count != count) {
        rc = rd_corrupt(&r, r.off - 8, "trailer counts %" PRIu64 " entries, file holds %" PRIu64,
                        want_count, count);
        goto out;
    }
    *lsn = snap_lsn;
    if (version) *version = snap_entry_version;
    rc = 0;

out:
    if (rc < 0 && rc != CAIRN_ECORRUPT && msg && msglen)
        snprintf(msg, msglen, "%s: read error: %s", path, cairn_strerror(rc));
    cairn_free(r.buf);
    close(r.fd);
    return rc;
}
