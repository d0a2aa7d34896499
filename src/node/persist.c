/*
 * persist.c — the node's write-ahead log and snapshots (see persist.h).
 *
 * Data dir layout:
 *
 *   LOCK                       flock()ed while a node uses the dir
 *   snapshot.cairn             the latest complete snapshot (at LSN S)
 *   wal-<first LSN>.log ...    log segments; records after S are replayed
 *
 * Life of a write: cmd_* -> db_log -> persist_record_end (record appended to
 * p->batch) -> persist_before_sleep: one write() of the batch (group commit)
 * -> commit_lsn advances at once (fsync no/everysec) or after the pool
 * thread's fdatasync (always) -> client_flush_all releases held replies.
 *
 * Snapshot: persist_bgsave writes the batch out, rotates to a new segment
 * at last_lsn + 1 and forks; the child writes snapshot.cairn (tmp, fsync,
 * rename); persist_child_exited then deletes the segments it covers.
 */
#include "node/persist.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/snap.h"
#include "lib/util.h"
#include "lib/wal.h"
#include "node/db.h"

typedef struct sync_job {
    uv_work_t work;
    persist_t *p;
    int fd, old_fd;
    uint64_t target;
    int rc;
} sync_job;

struct vh {
    uint64_t first_lsn;
    uint32_t version;
};

struct persist {
    node_t *node;
    struct vh *vh; /* version history: (first LSN, version), ascending */
    size_t nvh, capvh;
    uint64_t vh_floor;         /* the snapshot's LSN: versions known from here */
    uint32_t vh_floor_version;
    char *dir, *snap_path;
    int lock_fd;

    int fd;                /* current segment, opened for append */
    uint64_t seg_first;    /* its first LSN */
    uint64_t seg_size;     /* its size in bytes after the last whole batch */
    int old_fd;            /* a rotated-away segment still to be synced */
    cairn_buf payload;     /* the record being built */
    cairn_buf batch;       /* encoded records not yet written */
    uint64_t batch_last;   /* LSN of the last record in batch */
    uint64_t written_lsn, synced_lsn;
    uint64_t bytes_since_snap;
    bool sync_running;
    int64_t last_sync_ms, last_err_log_ms;
    int write_errno;

    pid_t child;
    uint64_t child_lsn, child_seg_first;
    int64_t child_start_ms;
    client_t **waiters;
    size_t nwaiters;
    bool scheduled;
    int64_t lastsave;
    bool last_ok;
    uint64_t snap_lsn;
    uint64_t fork_us;
};

static const char *fsync_name(int f)
{
    return f == FSYNC_ALWAYS ? "always" : f == FSYNC_EVERYSEC ? "everysec" : "no";
}

/* ---- records ---- */

cairn_buf *persist_record_begin(persist_t *p)
{
    p->payload.len = p->payload.pos = 0;
    return &p->payload;
}

/* Remember where the configuration version changes along the log, so the
 * version of any held entry can be told (replication's entry identity). */
static void vhist_note(persist_t *p, uint64_t lsn, uint32_t version)
{
    if (p->nvh && p->vh[p->nvh - 1].version == version) return;
    if (p->nvh == p->capvh) {
        p->capvh = p->capvh ? p->capvh * 2 : 8;
        p->vh = cairn_realloc(p->vh, p->capvh * sizeof(*p->vh));
    }
    p->vh[p->nvh++] = (struct vh){lsn, version};
}

int64_t persist_entry_version(node_t *n, uint64_t lsn)
{
    persist_t *p = n->persist;
    if (lsn == 0) return 0;
    if (lsn > n->last_lsn || lsn < p->vh_floor) return -1;
    if (lsn == p->vh_floor) return p->vh_floor_version;
    int64_t v = -1;
    for (size_t i = 0; i < p->nvh && p->vh[i].first_lsn <= lsn; i++) v = p->vh[i].version;
    return v;
}

void persist_record_end(persist_t *p, uint64_t lsn, uint32_t version)
{
    wal_encode(&p->batch, lsn, version, p->payload.data, p->payload.len);
    p->batch_last = lsn;
    vhist_note(p, lsn, version);
    if (p->payload.cap > (1u << 20)) buf_reset(&p->payload, 0);
}

void persist_append_raw(persist_t *p, uint64_t lsn, uint32_t version, const void *payload, size_t len)
{
    wal_encode(&p->batch, lsn, version, payload, len);
    p->batch_last = lsn;
    vhist_note(p, lsn, version);
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        data += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Write the batch to the current segment.  On failure the batch stays and
 * nothing is acknowledged; the next call retries. */
static int flush_batch(persist_t *p)
{
    if (p->batch.len == 0) return 0;
    int rc = write_all(p->fd, p->batch.data, p->batch.len);
    if (rc < 0) {
        /* A partial write leaves part of the batch in the file; cut it
         * off so the retry appends whole records after the last good one. */
        if (ftruncate(p->fd, (off_t)p->seg_size) == 0) lseek(p->fd, (off_t)p->seg_size, SEEK_SET);
        int64_t now = clock_ms();
        if (now - p->last_err_log_ms > 1000) {
            log_error("write-ahead log write failed: %s; writes are held until it succeeds",
                      strerror(-rc));
            p->last_err_log_ms = now;
        }
        p->write_errno = -rc;
        return rc;
    }
    p->write_errno = 0;
    p->bytes_since_snap += p->batch.len;
    p->seg_size += p->batch.len;
    p->written_lsn = p->batch_last;
    buf_reset(&p->batch, 4u << 20);
    return 0;
}

/* ---- fsync on a pool thread ---- */

static void sync_work(uv_work_t *w)
{
    sync_job *j = w->data;
    j->rc = 0;
    if (j->old_fd >= 0) {
        if (fdatasync(j->old_fd) < 0) j->rc = -errno;
        close(j->old_fd);
    }
    if (fdatasync(j->fd) < 0 && j->rc == 0) j->rc = -errno;
}

static void start_sync(persist_t *p);

static void sync_done(uv_work_t *w, int status)
{
    sync_job *j = w->data;
    persist_t *p = j->p;
    node_t *n = p->node;
    p->sync_running = false;
    if (status == 0 && j->rc == 0) {
        p->synced_lsn = j->target;
        if (n->cfg.fsync == FSYNC_ALWAYS && p->synced_lsn > n->durable_lsn) {
            node_durable(n, p->synced_lsn);
            client_flush_all(n);
        }
    } else {
        log_error("fdatasync of the write-ahead log failed: %s", strerror(-j->rc));
    }
    cairn_free(j);
    if (n->cfg.fsync == FSYNC_ALWAYS && p->written_lsn > p->synced_lsn) start_sync(p);
}

static void start_sync(persist_t *p)
{
    if (p->sync_running) return;
    sync_job *j = cairn_calloc(1, sizeof(*j));
    j->work.data = j;
    j->p = p;
    j->fd = p->fd;
    j->old_fd = p->old_fd;
    j->target = p->written_lsn;
    p->old_fd = -1;
    p->sync_running = true;
    p->last_sync_ms = clock_mono_ms();
    uv_queue_work(p->node->loop, &j->work, sync_work, sync_done);
}

void persist_before_sleep(node_t *n)
{
    persist_t *p = n->persist;
    if (flush_batch(p) < 0) return;
    if (n->cfg.fsync == FSYNC_ALWAYS) {
        if (p->written_lsn > p->synced_lsn) start_sync(p);
    } else {
        node_durable(n, p->written_lsn);
    }
}

/* ---- segments ---- */

static int open_segment(persist_t *p, uint64_t first)
{
    char *path = NULL;
    int fd = wal_create_segment(p->dir, first, &path);
    if (fd == -EEXIST) {
        /* A segment starting here exists and holds no record (recovery
         * read it): append to it. */
        char name[4096];
        snprintf(name, sizeof(name), "%s/wal-%020" PRIu64 ".log", p->dir, first);
        fd = open(name, O_WRONLY | O_CLOEXEC);
        if (fd < 0) fd = -errno;
    }
    if (fd < 0) {
        log_error("cannot create log segment in %s: %s", p->dir, cairn_strerror(fd));
        return fd;
    }
    off_t end = lseek(fd, 0, SEEK_END);
    p->seg_size = end > 0 ? (uint64_t)end : 0;
    free(path);
    p->fd = fd;
    p->seg_first = first;
    return 0;
}

/* Delete the segments whose records all precede `first_kept`. */
static void drop_segments_before(persist_t *p, uint64_t first_kept)
{
    wal_seg *segs;
    size_t ns;
    if (wal_list(p->dir, &segs, &ns) < 0) return;
    for (size_t i = 0; i < ns; i++)
        if (segs[i].first_lsn < first_kept && unlink(segs[i].path) == 0)
            log_info("removed log segment %s (covered by the snapshot)", segs[i].path);
    wal_segs_free(segs, ns);
}

/* ---- recovery ---- */

struct replay_ctx {
    node_t *n;
    uint64_t expected;
    resp_parser parser;
    const char *path;
    int rc;
};

static int replay_cb(void *arg, const wal_rec *rec)
{
    struct replay_ctx *r = arg;
    node_t *n = r->n;
    if (rec->lsn != r->expected) {
        log_error("log %s: record LSN %" PRIu64 " where %" PRIu64
                  " was expected (a gap in the log); refusing to start",
                  r->path, rec->lsn, r->expected);
        return CAIRN_ECORRUPT;
    }
    /* One command, or a transaction's commands (db.h): applied whole. */
    if (db_apply_record(n, &r->parser, rec->lsn, rec->payload, rec->len) < 0) {
        log_error("log %s: record LSN %" PRIu64 " is not a command; refusing to start", r->path,
                  rec->lsn);
        return CAIRN_ECORRUPT;
    }
    n->last_lsn = rec->lsn;
    n->last_version = rec->type;
    vhist_note(n->persist, rec->lsn, rec->type);
    r->expected++;
    return 0;
}

static int lock_dir(persist_t *p)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/LOCK", p->dir);
    p->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (p->lock_fd < 0) {
        log_error("cannot open %s: %s", path, strerror(errno));
        return -errno;
    }
    if (flock(p->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        log_error("data dir %s is in use by another cairn process (%s is locked)", p->dir, path);
        return -EBUSY;
    }
    return 0;
}

static int mkdir_p(const char *dir)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s", dir);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -errno;
        *s = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST) return -errno;
    return 0;
}

int persist_open(node_t *n)
{
    persist_t *p = cairn_calloc(1, sizeof(*p));
    n->persist = p;
    p->node = n;
    p->fd = p->old_fd = p->lock_fd = -1;
    p->dir = cairn_strndup(n->cfg.dir, strlen(n->cfg.dir));
    size_t sl = strlen(p->dir) + 32;
    p->snap_path = cairn_malloc(sl);
    snprintf(p->snap_path, sl, "%s/snapshot.cairn", p->dir);
    buf_init(&p->payload);
    buf_init(&p->batch);
    p->lastsave = clock_ms() / 1000;
    p->last_ok = true;

    int rc = mkdir_p(p->dir);
    if (rc < 0) {
        log_error("cannot create data dir %s: %s", p->dir, strerror(-rc));
        return rc;
    }
    if ((rc = lock_dir(p)) < 0) return rc;

    int64_t t0 = clock_mono_ms();
    char msg[512];
    uint64_t snap_lsn = 0;
    uint32_t snap_version = 0;
    rc = snap_load(p->snap_path, n->ks, &snap_lsn, &snap_version, msg, sizeof(msg));
    if (rc == -ENOENT) {
        snap_lsn = 0;
    } else if (rc < 0) {
        log_error("snapshot %s is damaged: %s; refusing to start (restore the file or resync "
                  "this replica from its group)",
                  p->snap_path, msg);
        return rc;
    } else {
        log_notice("loaded snapshot %s: %zu keys at LSN %" PRIu64, p->snap_path, ks_size(n->ks),
                   snap_lsn);
    }
    p->snap_lsn = snap_lsn;
    n->last_lsn = snap_lsn;
    n->last_version = snap_version;
    p->vh_floor = snap_lsn;
    p->vh_floor_version = snap_version;

    wal_seg *segs;
    size_t ns;
    if ((rc = wal_list(p->dir, &segs, &ns)) < 0) {
        log_error("cannot list log segments in %s: %s", p->dir, cairn_strerror(rc));
        return rc;
    }
    struct replay_ctx r = {.n = n, .expected = snap_lsn + 1};
    resp_limits lim = {.max_bulk = WAL_MAX_PAYLOAD, .max_args = SIZE_MAX / 64, .max_inline = 1u << 16};
    resp_parser_init(&r.parser, &lim);
    n->loading = true;
    size_t replayed = 0;
    for (size_t i = 0; i < ns && rc == 0; i++) {
        /* A segment entirely covered by the snapshot need not be read. */
        if (i + 1 < ns && segs[i + 1].first_lsn <= snap_lsn + 1) continue;
        wal_scan scan;
        uint64_t before = r.expected;
        r.path = segs[i].path;
        rc = wal_read_segment(segs[i].path, snap_lsn, replay_cb, &r, &scan);
        replayed += r.expected - before;
        if (rc < 0) {
            if (rc == CAIRN_ECORRUPT && scan.msg[0])
                log_error("log damaged: %s; refusing to start (the data before it is intact; "
                          "restore the file or resync this replica from its group)",
                          scan.msg);
            else if (rc != CAIRN_ECORRUPT)
                log_error("cannot read log segment %s: %s", segs[i].path, cairn_strerror(rc));
            break;
        }
        if (scan.torn && i + 1 < ns) {
            /* Only the newest segment can end in a write cut short by a
             * crash; an older one was complete when the log rotated. */
            log_error("log damaged: %s (not the newest segment, so not a torn write); refusing "
                      "to start (restore the file or resync this replica from its group)",
                      scan.msg);
            rc = CAIRN_ECORRUPT;
        } else if (scan.torn && scan.valid_end == 0) {
            log_warn("log %s has a torn segment header (%s): it holds no record; removing it",
                     segs[i].path, scan.msg);
            if (unlink(segs[i].path) < 0) rc = -errno;
        } else if (scan.torn) {
            log_warn("log %s ends in a torn record (%s): truncating to %" PRIu64
                     " bytes; every record before it is kept",
                     segs[i].path, scan.msg, scan.valid_end);
            rc = wal_truncate(segs[i].path, scan.valid_end);
            if (rc < 0) log_error("cannot truncate %s: %s", segs[i].path, cairn_strerror(rc));
        }
    }
    n->loading = false;
    resp_parser_close(&r.parser);
    wal_segs_free(segs, ns);
    if (rc < 0) return rc;
    n->commit_lsn = n->durable_lsn = n->last_lsn;
    p->written_lsn = p->synced_lsn = n->last_lsn;
    log_notice("recovered %zu keys in %lld ms: snapshot LSN %" PRIu64 ", %zu log records replayed, "
               "last LSN %" PRIu64,
               ks_size(n->ks), (long long)(clock_mono_ms() - t0), snap_lsn, replayed, n->last_lsn);
    return open_segment(p, n->last_lsn + 1);
}

/* ---- snapshots ---- */

static void finish_waiters(persist_t *p, bool ok)
{
    for (size_t i = 0; i < p->nwaiters; i++) {
        client_t *c = p->waiters[i];
        if (ok) reply_ok(&c->out);
        else reply_error(&c->out, "ERR Background save failed; see the log");
        client_unblock(c);
    }
    p->nwaiters = 0;
}

void persist_forget_client(node_t *n, client_t *c)
{
    persist_t *p = n->persist;
    if (!p) return;
    for (size_t i = 0; i < p->nwaiters; i++)
        if (p->waiters[i] == c) p->waiters[i--] = p->waiters[--p->nwaiters];
}

int persist_bgsave(node_t *n, client_t *waiter)
{
    persist_t *p = n->persist;
    if (p->child > 0) return -EALREADY;
    int rc = flush_batch(p);
    if (rc < 0) return rc;
    /* Rotate so the new segment holds exactly the records after the
     * snapshot (unless the current one holds none yet). */
    if (p->seg_first != n->last_lsn + 1) {
        int old = p->fd;
        if ((rc = open_segment(p, n->last_lsn + 1)) < 0) return rc;
        if (n->cfg.fsync == FSYNC_NO) {
            close(old);
        } else {
            if (p->old_fd >= 0) { /* two rotations before a sync ran: rare */
                fdatasync(p->old_fd);
                close(p->old_fd);
            }
            p->old_fd = old;
            if (!p->sync_running) start_sync(p);
        }
    }
    int64_t t0 = clock_us();
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork for snapshot failed: %s", strerror(errno));
        return -errno;
    }
    if (pid == 0) {
        /* Child: drop every inherited descriptor (so closed client sockets
         * really close), write the snapshot, exit. */
        close_range(3, ~0U, 0);
        int wrc = snap_write(p->snap_path, n->ks, n->last_lsn, (uint32_t)n->last_version, clock_ms());
        _exit(wrc == 0 ? 0 : 1);
    }
    p->fork_us = (uint64_t)(clock_us() - t0);
    p->child = pid;
    p->child_lsn = n->last_lsn;
    p->child_seg_first = p->seg_first;
    p->child_start_ms = clock_ms();
    if (waiter) {
        p->waiters = cairn_realloc(p->waiters, (p->nwaiters + 1) * sizeof(*p->waiters));
        p->waiters[p->nwaiters++] = waiter;
    }
    log_notice("snapshot started by pid %d at LSN %" PRIu64 " (fork took %llu us)", (int)pid,
               p->child_lsn, (unsigned long long)p->fork_us);
    return 0;
}

void persist_child_exited(node_t *n)
{
    persist_t *p = n->persist;
    if (!p || p->child <= 0) return;
    int status;
    pid_t r = waitpid(p->child, &status, WNOHANG);
    if (r != p->child) return;
    p->child = 0;
    bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        p->snap_lsn = p->child_lsn;
        p->lastsave = clock_ms() / 1000;
        p->bytes_since_snap = 0;
        drop_segments_before(p, p->child_seg_first);
        log_notice("snapshot at LSN %" PRIu64 " done in %lld ms", p->snap_lsn,
                   (long long)(clock_ms() - p->child_start_ms));
    } else {
        log_error("snapshot child failed (status %d); the log is kept, nothing is lost", status);
    }
    p->last_ok = ok;
    finish_waiters(p, ok);
    node_snapshot_done(n, ok, p->child_lsn);
    if (p->scheduled) {
        p->scheduled = false;
        persist_bgsave(n, NULL);
    }
}

void persist_cron(node_t *n)
{
    persist_t *p = n->persist;
    persist_child_exited(n); /* in case a SIGCHLD was coalesced */
    if (n->cfg.fsync == FSYNC_EVERYSEC && p->written_lsn > p->synced_lsn && !p->sync_running &&
        clock_mono_ms() - p->last_sync_ms >= 1000)
        start_sync(p);
    if (p->child <= 0 && p->scheduled) { /* BGSAVE inside EXEC */
        p->scheduled = false;
        persist_bgsave(n, NULL);
    }
    if (p->child <= 0 && p->bytes_since_snap > (uint64_t)n->cfg.wal_snapshot_size) {
        log_notice("log grew past wal-snapshot-size (%lld bytes): taking a snapshot",
                   (long long)n->cfg.wal_snapshot_size);
        persist_bgsave(n, NULL);
    }
}

bool persist_bgsave_running(node_t *n) { return n->persist && n->persist->child > 0; }
void persist_schedule_bgsave(node_t *n) { n->persist->scheduled = true; }
int64_t persist_lastsave(node_t *n) { return n->persist ? n->persist->lastsave : 0; }

int persist_close(node_t *n, bool snapshot)
{
    persist_t *p = n->persist;
    if (!p) return 0;
    int rc = 0;
    if (p->child > 0) { /* let a running snapshot finish: it may be our only one */
        int status;
        waitpid(p->child, &status, 0);
        p->child = 0;
    }
    flush_batch(p);
    if (p->fd >= 0) {
        if (n->cfg.fsync != FSYNC_NO) fdatasync(p->fd);
        if (p->old_fd >= 0) {
            fdatasync(p->old_fd);
            close(p->old_fd);
            p->old_fd = -1;
        }
    }
    if (snapshot) {
        rc = snap_write(p->snap_path, n->ks, n->last_lsn, (uint32_t)n->last_version, clock_ms());
        if (rc < 0) {
            log_error("snapshot at shutdown failed: %s", cairn_strerror(rc));
        } else {
            log_notice("snapshot at LSN %" PRIu64 " written at shutdown", n->last_lsn);
            if (p->seg_first <= n->last_lsn) { /* start the next run with an empty log */
                close(p->fd);
                p->fd = -1;
                if (open_segment(p, n->last_lsn + 1) == 0) drop_segments_before(p, n->last_lsn + 1);
            } else {
                drop_segments_before(p, p->seg_first);
            }
        }
    }
    if (n->durable_lsn < n->last_lsn) node_durable(n, n->last_lsn);
    return rc;
}

int persist_reset(node_t *n, uint64_t lsn, uint32_t version)
{
    persist_t *p = n->persist;
    /* The snapshot file is in place (the caller renamed it there): every
     * segment is superseded. */
    p->batch.len = p->batch.pos = 0;
    if (p->fd >= 0) close(p->fd);
    p->fd = -1;
    if (p->old_fd >= 0) close(p->old_fd);
    p->old_fd = -1;
    drop_segments_before(p, UINT64_MAX);
    p->snap_lsn = p->written_lsn = p->synced_lsn = lsn;
    p->bytes_since_snap = 0;
    p->nvh = 0;
    p->vh_floor = lsn;
    p->vh_floor_version = version;
    return open_segment(p, lsn + 1);
}

const char *persist_snapshot_path(node_t *n) { return n->persist->snap_path; }

/* Release everything (after persist_close, when the loop has stopped). */
void persist_destroy(node_t *n)
{
    persist_t *p = n->persist;
    if (!p) return;
    if (p->fd >= 0) close(p->fd);
    if (p->lock_fd >= 0) close(p->lock_fd);
    buf_close(&p->payload);
    buf_close(&p->batch);
    cairn_free(p->waiters);
    cairn_free(p->vh);
    cairn_free(p->dir);
    cairn_free(p->snap_path);
    cairn_free(p);
    n->persist = NULL;
}

void persist_info(node_t *n, cairn_buf *b)
{
    persist_t *p = n->persist;
    char line[1024];
    int l = snprintf(line, sizeof(line),
                     "loading:0\r\naof_enabled:1\r\nwal_fsync:%s\r\nwal_last_lsn:%" PRIu64
                     "\r\nwal_commit_lsn:%" PRIu64 "\r\nwal_written_lsn:%" PRIu64
                     "\r\nwal_synced_lsn:%" PRIu64 "\r\nwal_bytes_since_snapshot:%" PRIu64
                     "\r\nwal_write_error:%s\r\nsnapshot_lsn:%" PRIu64
                     "\r\nrdb_changes_since_last_save:%" PRIu64
                     "\r\nrdb_bgsave_in_progress:%d\r\nrdb_last_save_time:%lld"
                     "\r\nrdb_last_bgsave_status:%s\r\nlatest_fork_usec:%llu\r\n",
                     fsync_name(n->cfg.fsync), n->last_lsn, n->commit_lsn, p->written_lsn,
                     p->synced_lsn, p->bytes_since_snap, p->write_errno ? strerror(p->write_errno) : "none",
                     p->snap_lsn, n->last_lsn - p->snap_lsn, p->child > 0,
                     (long long)p->lastsave, p->last_ok ? "ok" : "err", (unsigned long long)p->fork_us);
    buf_append(b, line, (size_t)l);
}
