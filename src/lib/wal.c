/*
 * wal.c — write-ahead log records and segment files.  The format and the
 * torn-versus-corrupt rules are in wal.h; this file follows them in the
 * order they are listed there (see wal_read_segment).
 */
#include "lib/wal.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "lib/err.h"
#include "lib/mem.h"

#define SEG_MAGIC "CAIRNWAL"
#define SEG_NAME_LEN 28 /* "wal-" + 20 digits + ".log" */
#define RD_CHUNK (64u * 1024)

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

/* ---- records ---- */

typedef struct rec_hdr {
    uint32_t len;
    uint64_t lsn;
    uint32_t pcheck;
    uint32_t type;
} rec_hdr;

static uint32_t hdr_check(const char *p) { return (uint32_t)XXH3_64bits(p + 4, WAL_REC_HDR_SIZE - 4); }

static uint32_t payload_check(const char *payload, size_t len, uint64_t lsn)
{
    return (uint32_t)XXH3_64bits_withSeed(payload, len, lsn);
}

/* Parse the 24-byte header at p; false if its checksum fails (then *h is
 * not to be trusted, least of all its length). */
static bool hdr_parse(const char *p, rec_hdr *h)
{
    if (get32(p) != hdr_check(p)) return false;
    h->len = get32(p + 4);
    h->lsn = get64(p + 8);
    h->pcheck = get32(p + 16);
    h->type = get32(p + 20);
    return true;
}

void wal_encode(cairn_buf *out, uint64_t lsn, uint32_t type, const void *payload, size_t len)
{
    assert(len <= WAL_MAX_PAYLOAD);
    char *p = buf_reserve(out, WAL_REC_HDR_SIZE + len);
    put32(p + 4, (uint32_t)len);
    put64(p + 8, lsn);
    put32(p + 16, payload_check(payload, len, lsn));
    put32(p + 20, type);
    put32(p, hdr_check(p));
    if (len) memcpy(p + WAL_REC_HDR_SIZE, payload, len);
    out->len += WAL_REC_HDR_SIZE + len;
}

int wal_decode(const char *buf, size_t len, size_t max_payload, wal_rec *rec, size_t *rec_len)
{
    rec_hdr h;
    if (len < WAL_REC_HDR_SIZE) return CAIRN_EAGAIN;
    if (!hdr_parse(buf, &h)) return CAIRN_ECORRUPT;
    if (h.len > max_payload) return CAIRN_ELIMIT;
    if (len - WAL_REC_HDR_SIZE < h.len) return CAIRN_EAGAIN;
    const char *payload = buf + WAL_REC_HDR_SIZE;
    if (payload_check(payload, h.len, h.lsn) != h.pcheck) return CAIRN_ECORRUPT;
    rec->lsn = h.lsn;
    rec->type = h.type;
    rec->payload = payload;
    rec->len = h.len;
    *rec_len = WAL_REC_HDR_SIZE + h.len;
    return 0;
}

/* ---- segment names and the segment header ---- */

/* "wal-" + exactly 20 digits + ".log", and the digits fit in 64 bits. */
static bool seg_name_parse(const char *name, uint64_t *lsn)
{
    if (strlen(name) != SEG_NAME_LEN || memcmp(name, "wal-", 4) != 0 ||
        memcmp(name + 24, ".log", 4) != 0)
        return false;
    uint64_t v = 0;
    for (int i = 4; i < 24; i++) {
        if (name[i] < '0' || name[i] > '9') return false;
        unsigned d = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *lsn = v;
    return true;
}

static char *seg_path(const char *dir, uint64_t first_lsn)
{
    size_t dlen = strlen(dir);
    char *p = cairn_malloc(dlen + 1 + SEG_NAME_LEN + 1);
    memcpy(p, dir, dlen);
    snprintf(p + dlen, 1 + SEG_NAME_LEN + 1, "/wal-%020" PRIu64 ".log", first_lsn);
    return p;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static void seg_hdr_encode(char *p, uint64_t first_lsn)
{
    memcpy(p, SEG_MAGIC, 8);
    put32(p + 8, WAL_VERSION);
    put32(p + 12, 0);
    put64(p + 16, first_lsn);
    put64(p + 24, XXH3_64bits(p, 24));
}

/* ---- small I/O helpers ---- */

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

/* Make a directory entry change durable.  Some file systems refuse fsync on
 * a directory with EINVAL; there is nothing more to do on those. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 && errno != EINVAL ? -errno : 0;
    close(fd);
    return rc;
}

/* ---- listing ---- */

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const wal_seg *)a)->first_lsn, y = ((const wal_seg *)b)->first_lsn;
    return x < y ? -1 : x > y;
}

int wal_list(const char *dir, wal_seg **segs, size_t *n)
{
    *segs = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return -errno;
    wal_seg *v = NULL;
    size_t len = 0, cap = 0;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *de = readdir(d);
        if (!de) {
            rc = errno ? -errno : 0;
            break;
        }
        uint64_t lsn;
        if (!seg_name_parse(de->d_name, &lsn)) continue;
        if (len == cap) {
            cap = cap ? cap * 2 : 16;
            v = cairn_realloc(v, cap * sizeof(*v));
        }
        v[len].first_lsn = lsn;
        v[len].path = seg_path(dir, lsn);
        len++;
    }
    closedir(d);
    if (rc < 0) {
        wal_segs_free(v, len);
        return rc;
    }
    if (len) qsort(v, len, sizeof(*v), seg_cmp);
    *segs = v;
    *n = len;
    return 0;
}

void wal_segs_free(wal_seg *segs, size_t n)
{
    for (size_t i = 0; i < n; i++) cairn_free(segs[i].path);
    cairn_free(segs);
}

/* ---- creating ---- */

/* Give the fully written temporary file its final name without ever
 * replacing an existing segment: link() fails with EEXIST.  On file systems
 * without hard links, fall back to a checked rename. */
static int publish(const char *tmp, const char *path)
{
    if (link(tmp, path) == 0) {
        unlink(tmp);
        return 0;
    }
    if (errno != EPERM && errno != EOPNOTSUPP && errno != ENOSYS) return -errno;
    struct stat st;
    if (stat(path, &st) == 0) return -EEXIST;
    return rename(tmp, path) < 0 ? -errno : 0;
}

int wal_create_segment(const char *dir, uint64_t first_lsn, char **path_out)
{
    char hdr[WAL_SEG_HDR_SIZE];
    char *path = seg_path(dir, first_lsn);
    size_t plen = strlen(path);
    char *tmp = cairn_malloc(plen + 5);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    int rc;

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto fail_path;
    }
    seg_hdr_encode(hdr, first_lsn);
    if ((rc = write_all(fd, hdr, sizeof(hdr))) < 0) goto fail_fd;
    if (fsync(fd) < 0) {
        rc = -errno;
        goto fail_fd;
    }
    if ((rc = publish(tmp, path)) < 0) goto fail_fd;
    /* The fd still refers to the same inode, now named `path`, positioned
     * just after the header. */
    if ((rc = fsync_dir(dir)) < 0) {
        close(fd);
        goto fail_path;
    }
    cairn_free(tmp);
    if (path_out)
        *path_out = path;
    else
        cairn_free(path);
    return fd;

fail_fd:
    close(fd);
    unlink(tmp);
fail_path:
    cairn_free(tmp);
    cairn_free(path);
    return rc;
}

int wal_truncate(const char *path, uint64_t size)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = 0;
    if (ftruncate(fd, (off_t)size) < 0 || fsync(fd) < 0) rc = -errno;
    close(fd);
    return rc;
}

/* ---- reading ---- */

/* A buffered reader over a file of known size: buf[start..end) holds the
 * unread bytes, the first of which is at file offset `off`.  The buffer is
 * RD_CHUNK bytes and grows only to hold one record larger than that. */
typedef struct rd {
    int fd;
    char *buf;
    size_t cap, start, end;
    uint64_t off, size;
} rd;

/* Make at least n unread bytes available at buf + start.  The caller has
 * checked that the file holds them; a file that turns out shorter than its
 * fstat size (it shrank under us) is an I/O error. */
static int rd_fill(rd *r, size_t n)
{
    if (r->end - r->start >= n) return 0;
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
        if (k == 0) return -EIO;
        r->end += (size_t)k;
    }
    return 0;
}

static void rd_skip(rd *r, size_t n)
{
    assert(n <= r->end - r->start);
    r->start += n;
    r->off += n;
}

/* After a large record, give its memory back. */
static void rd_shrink(rd *r)
{
    size_t have = r->end - r->start;
    if (r->cap <= 2 * RD_CHUNK || have > RD_CHUNK) return;
    memmove(r->buf, r->buf + r->start, have);
    r->start = 0;
    r->end = have;
    r->buf = cairn_realloc(r->buf, RD_CHUNK);
    r->cap = RD_CHUNK;
}

/* Are all bytes from the reader's position to the end of the file zero?
 * Consumes the reader.  Returns 1, 0, or -errno. */
static int rd_rest_zero(rd *r)
{
    while (r->off < r->size) {
        uint64_t left = r->size - r->off;
        size_t want = left < RD_CHUNK ? (size_t)left : RD_CHUNK;
        int rc = rd_fill(r, want);
        if (rc < 0) return rc;
        for (size_t i = 0; i < want; i++)
            if (r->buf[r->start + i] != 0) return 0;
        rd_skip(r, want);
    }
    return 1;
}

static void scan_msg(wal_scan *res, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void scan_msg(wal_scan *res, const char *path, const char *fmt, ...)
{
    int n = snprintf(res->msg, sizeof(res->msg), "%s: ", path);
    if (n < 0 || (size_t)n >= sizeof(res->msg)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->msg + n, sizeof(res->msg) - (size_t)n, fmt, ap);
    va_end(ap);
}

#define CORRUPT(at, ...)                                                   \
    do {                                                                   \
        res->bad_offset = (at);                                            \
        scan_msg(res, path, __VA_ARGS__);                                  \
        rc = CAIRN_ECORRUPT;                                               \
        goto out;                                                          \
    } while (0)

#define TORN(at, ...)                                                      \
    do {                                                                   \
        res->torn = true;                                                  \
        res->valid_end = (at);                                             \
        scan_msg(res, path, __VA_ARGS__);                                  \
        rc = 0;                                                            \
        goto out;                                                          \
    } while (0)

#define IOERR(e)                                                           \
    do {                                                                   \
        rc = (e);                                                          \
        scan_msg(res, path, "read error: %s", cairn_strerror(rc));         \
        goto out;                                                          \
    } while (0)

int wal_read_segment(const char *path, uint64_t after_lsn,
                     int (*fn)(void *arg, const wal_rec *rec), void *arg, wal_scan *res)
{
    memset(res, 0, sizeof(*res));
    uint64_t name_lsn = 0;
    bool named = seg_name_parse(base_name(path), &name_lsn);
    res->first_lsn = name_lsn;
    res->last_lsn = name_lsn - 1;

    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        scan_msg(res, path, "cannot open: %s", strerror(-e));
        return e;
    }
    rd r = { .fd = fd, .buf = cairn_malloc(RD_CHUNK), .cap = RD_CHUNK };
    int rc = 0, z;
    struct stat st;
    if (fstat(fd, &st) < 0) IOERR(-errno);
    r.size = (uint64_t)st.st_size;

    /* Segment header. */
    if (r.size < WAL_SEG_HDR_SIZE)
        TORN(0, "segment header cut short (%" PRIu64 " of %u bytes)", r.size, WAL_SEG_HDR_SIZE);
    if ((rc = rd_fill(&r, WAL_SEG_HDR_SIZE)) < 0) IOERR(rc);
    const char *h = r.buf + r.start;
    if (memcmp(h, SEG_MAGIC, 8) != 0) CORRUPT(0, "bad segment magic at offset 0");
    if (get64(h + 24) != XXH3_64bits(h, 24)) CORRUPT(0, "bad segment header checksum at offset 0");
    if (get32(h + 8) != WAL_VERSION)
        CORRUPT(0, "unsupported segment version %" PRIu32 " at offset 0", get32(h + 8));
    uint64_t first = get64(h + 16);
    if (named && first != name_lsn)
        CORRUPT(0, "segment header says first LSN %" PRIu64 ", file name says %" PRIu64
                   " at offset 0", first, name_lsn);
    res->first_lsn = first;
    res->last_lsn = first - 1;
    res->valid_end = WAL_SEG_HDR_SIZE;
    rd_skip(&r, WAL_SEG_HDR_SIZE);

    /* Records, each checked against the rules at the top of wal.h in order. */
    uint64_t expect = first;
    while (r.off < r.size) {
        uint64_t off = r.off, left = r.size - off;
        rec_hdr rh;
        if (left < WAL_REC_HDR_SIZE)
            TORN(off, "record header cut short at offset %" PRIu64, off);
        if ((rc = rd_fill(&r, WAL_REC_HDR_SIZE)) < 0) IOERR(rc);
        if (!hdr_parse(r.buf + r.start, &rh)) {
            rd_skip(&r, WAL_REC_HDR_SIZE);
            if ((z = rd_rest_zero(&r)) < 0) IOERR(z);
            if (z) TORN(off, "torn record (bad header, only zeros after it) at offset %" PRIu64, off);
            CORRUPT(off, "bad record header checksum at offset %" PRIu64, off);
        }
        if (rh.lsn != expect)
            CORRUPT(off, "record LSN %" PRIu64 " where %" PRIu64 " was expected at offset %" PRIu64,
                    rh.lsn, expect, off);
        if (rh.len > WAL_MAX_PAYLOAD)
            CORRUPT(off, "record length %" PRIu32 " above the limit at offset %" PRIu64, rh.len, off);
        if (left - WAL_REC_HDR_SIZE < rh.len)
            TORN(off, "record payload cut short at offset %" PRIu64, off);

        size_t rlen = WAL_REC_HDR_SIZE + (size_t)rh.len;
        if ((rc = rd_fill(&r, rlen)) < 0) IOERR(rc);
        const char *payload = r.buf + r.start + WAL_REC_HDR_SIZE;
        if (payload_check(payload, rh.len, rh.lsn) != rh.pcheck) {
            rd_skip(&r, rlen);
            if ((z = rd_rest_zero(&r)) < 0) IOERR(z);
            if (z) TORN(off, "torn last record (bad payload checksum, nothing but zeros after it) at offset %" PRIu64, off);
            CORRUPT(off, "bad record checksum at offset %" PRIu64, off);
        }
        if (rh.lsn > after_lsn) {
            wal_rec rec = { .lsn = rh.lsn, .type = rh.type, .payload = payload, .len = rh.len };
            if ((rc = fn(arg, &rec)) < 0) goto out;
            rc = 0;
        }
        rd_skip(&r, rlen);
        rd_shrink(&r);
        res->last_lsn = rh.lsn;
        res->valid_end = r.off;
        expect++;
    }

out:
    cairn_free(r.buf);
    close(fd);
    return rc;
}
