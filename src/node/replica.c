/*
 * replica.c — the node's side of a replica group (see replica.h).
 *
 *   manager  <--- CAIRN HEARTBEAT {json} every 100 ms ----  node
 *            ---- {"shard": configuration} ---------------->  repl_set_config
 *   peer     <--- CAIRN REPL <msg> (one rconn per peer) ----  io->send
 *   peer     ---- CAIRN REPL <msg> (its rconn to us) ------>  replica_cmd -> repl_recv
 *            ---- part of a large one (client.c, each read) -->  repl_stream_progress
 *   primary  ---- CAIRN SNAPCHUNK / SNAPEND -------------->  replica_cmd (replica loads)
 *   manager  ---- CAIRN DRAIN / DRAIN-STATUS / RESUME ---->  repl_drain_* (switchover)
 *   manager  ---- CAIRN CONFIG {json} -------------------->  repl_set_config (a push)
 *
 * Every message is one-way; the +OK reply only acknowledges transport.
 * Replies to clients follow node->commit_lsn, which the state machine sets
 * through io->committed (invariant 3).  A client command runs only where
 * replica_admit() allows: on the primary while it holds its leases
 * (invariant 4); elsewhere the client is told who the primary is.
 *
 * Switchover (the manager drives it: src/manager/mgr_switchover.c):
 *
 *   CAIRN DRAIN <shard> <version> <ms> <target>   fence and hand over: every
 *         command that reads or writes data is answered "-TRYAGAIN cairn:
 *         switchover in progress ..." (refused before running, so the
 *         gateway retries it), replication goes on; at most <ms> from now,
 *         then serving again by itself (repl.h, "Handing over")
 *   CAIRN DRAIN-STATUS <shard> <version> <target>
 *   CAIRN RESUME <shard> <version>                the manager gave up: serve
 *         again now
 *   All three answer {"state":"none|draining|drained","version","last_lsn",
 *   "commit_lsn","target_match","left_ms"} at once (never held), or -ERR
 *   when this node is not the primary of <shard> at <version>.  "drained":
 *   the commit index is the last LSN, and <target> has acknowledged
 *   target_match of it.
 *   CAIRN CONFIG <json>  a configuration, as in a heartbeat's reply: the
 *         manager pushes the new one at once instead of waiting for the
 *         next heartbeat.
 *
 * Wire form of a REPL message (all numbers decimal):
 *   CAIRN REPL <type> <shard> <version> <from> <from-addr> <to> <sent_at>
 *              <commit> <lsn> <entry_version> <cfg> <flags> <n>
 *              [<lsn> <version> <payload>]*n
 * where <cfg> is "" or "shard version primary nsec sec... nlearn learner..."
 * and <flags> the REPL_F_* bits.
 */
#include "node/replica.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/repl.h"
#include "lib/reply.h"
#include "lib/resp.h"
#include "lib/snap.h"
#include "lib/util.h"
#include "net/rconn.h"
#include "node/cmd.h"
#include "node/db.h"
#include "node/persist.h"
#include "node/watch.h"

#define TICK_MS 10
#define HEARTBEAT_MS 100
#define MAX_PEERS (2 * REPL_MAX_MEMBERS + 2)
#define SNAP_CHUNK (1u << 20)

typedef struct peer {
    uint64_t id;
    char addr[80];
    rconn_t *conn;
} peer;

typedef struct bl_ent {
    uint64_t lsn;
    uint32_t version;
    char *p;
    size_t len;
} bl_ent;

typedef struct snap_send {
    replica_t *rep;
    uint64_t to;
    int fd;
    uint64_t off, size, lsn;
    uint32_t version;
} snap_send;

struct replica {
    node_t *n;
    repl_t *r;
    uint64_t self;
    char self_hex[17];
    char addr[96];
    char **mgrs;
    size_t nmgr, mgr_idx;
    rconn_t *mgr;
    uv_timer_t timer;
    int64_t last_hb;
    bool hb_inflight;
    int64_t last_mgr_ok;
    uint32_t replicas; /* replication factor, from the manager */
    peer peers[MAX_PEERS];
    size_t npeers;
    bl_ent *bl; /* ring of recent entries, consecutive LSNs */
    size_t bl_head, bl_n, bl_cap, bl_bytes;
    uint64_t snap_waiting[MAX_PEERS];
    size_t nsnap_waiting;
    enum repl_role role;
    int recv_fd;
    uint64_t recv_size;
    repl_entry *rd; /* read_log scratch */
    size_t rd_cap;
    uint64_t saved_version; /* last configuration version written to disk */
    uint64_t pending_last;  /* primary: entries logged this loop turn, up to here */
    enum repl_drain drain;  /* as last logged */
    uint64_t drain_version; /* configuration of that drain */
    bool stopping;          /* replica_stop: callbacks of failing requests do nothing */
    /* The connection that last delivered a SYNC or APPEND, and whose: a
     * large message arriving on it is progress (replica_stream_progress). */
    uint64_t stream_client, stream_from, stream_version;
};

static int64_t now_ms(void) { return clock_mono_ms(); }

static void hex_id(uint64_t id, char out[17]) { snprintf(out, 17, "%016" PRIx64, id); }

static bool parse_hex(const char *s, uint64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 16);
    if (*end || errno) return false;
    *out = v;
    return true;
}

static bool parse_hex_arg(const resp_arg *a, uint64_t *out)
{
    char buf[24];
    if (a->len == 0 || a->len > 16) return false;
    memcpy(buf, a->p, a->len);
    buf[a->len] = '\0';
    return parse_hex(buf, out) && *out != 0;
}

static bool arg_u64(const resp_arg *a, uint64_t *out)
{
    char buf[32];
    if (a->len == 0 || a->len >= sizeof(buf)) return false;
    memcpy(buf, a->p, a->len);
    buf[a->len] = '\0';
    if (buf[0] == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end || errno) return false;
    *out = v;
    return true;
}

/* ---- node id ---- */

static int load_node_id(node_t *n, uint64_t *id)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/node.id", n->cfg.dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char buf[64] = {0};
        bool ok = fgets(buf, sizeof(buf), f) != NULL;
        fclose(f);
        buf[strcspn(buf, "\r\n")] = '\0';
        if (ok && parse_hex(buf, id) && *id) return 0;
        log_error("%s does not hold a node id; remove it to get a new one", path);
        return CAIRN_ECORRUPT;
    }
    uint64_t v = 0;
    while (v == 0)
        if (getrandom(&v, sizeof(v), 0) != sizeof(v)) v = (uint64_t)clock_us();
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f) return -errno;
    fprintf(f, "%016" PRIx64 "\n", v);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    if (rename(tmp, path) < 0) return -errno;
    *id = v;
    log_notice("new node id %016" PRIx64 " saved in %s", v, path);
    return 0;
}

/* ---- backlog of recent entries (catch-up without a snapshot) ---- */

static bl_ent *bl_at(replica_t *rp, size_t i) { return &rp->bl[(rp->bl_head + i) % rp->bl_cap]; }

static void bl_clear(replica_t *rp)
{
    for (size_t i = 0; i < rp->bl_n; i++) cairn_free(bl_at(rp, i)->p);
    rp->bl_n = rp->bl_head = rp->bl_bytes = 0;
}

static void bl_push(replica_t *rp, uint64_t lsn, uint32_t version, const char *p, size_t len)
{
    if (rp->bl_n && bl_at(rp, rp->bl_n - 1)->lsn + 1 != lsn) bl_clear(rp); /* keep it consecutive */
    if (rp->bl_n == rp->bl_cap) {
        size_t ncap = rp->bl_cap ? rp->bl_cap * 2 : 1024;
        bl_ent *nb = cairn_malloc(ncap * sizeof(*nb));
        for (size_t i = 0; i < rp->bl_n; i++) nb[i] = *bl_at(rp, i);
        cairn_free(rp->bl);
        rp->bl = nb;
        rp->bl_cap = ncap;
        rp->bl_head = 0;
    }
    bl_ent *e = &rp->bl[(rp->bl_head + rp->bl_n) % rp->bl_cap];
    e->lsn = lsn;
    e->version = version;
    e->p = cairn_malloc(len ? len : 1);
    memcpy(e->p, p, len);
    e->len = len;
    rp->bl_n++;
    rp->bl_bytes += len + 64;
    while (rp->bl_n > 1 && rp->bl_bytes > (size_t)rp->n->cfg.repl_backlog_size) {
        bl_ent *h = bl_at(rp, 0);
        rp->bl_bytes -= h->len + 64;
        cairn_free(h->p);
        rp->bl_head = (rp->bl_head + 1) % rp->bl_cap;
        rp->bl_n--;
    }
}

/* ---- peers ---- */

static peer *peer_find(replica_t *rp, uint64_t id)
{
    for (size_t i = 0; i < rp->npeers; i++)
        if (rp->peers[i].id == id) return &rp->peers[i];
    return NULL;
}

static void peer_set(replica_t *rp, uint64_t id, const char *addr)
{
    if (id == rp->self || !addr || !*addr) return;
    peer *p = peer_find(rp, id);
    if (p && strcmp(p->addr, addr) == 0) return;
    if (!p) {
        if (rp->npeers == MAX_PEERS) return;
        p = &rp->peers[rp->npeers++];
        memset(p, 0, sizeof(*p));
        p->id = id;
    }
    if (p->conn) rconn_destroy(p->conn);
    snprintf(p->addr, sizeof(p->addr), "%s", addr);
    rconn_opts o = {.connect_timeout_ms = 500, .reply_timeout_ms = 2000, .max_pending = 1u << 20};
    p->conn = rconn_create(rp->n->loop, addr, &o);
}

static void ignore_reply(void *arg, const char *reply, size_t len)
{
    (void)arg;
    (void)reply;
    (void)len;
}

/* Give repl the entries logged since the last hand-over.  They carry the
 * configuration version they were created under, so this runs before any
 * call that may change the configuration (and at before-sleep). */
static void hand_over(replica_t *rp)
{
    if (rp->pending_last > repl_last_lsn(rp->r) && repl_role(rp->r) == REPL_PRIMARY)
        repl_local_append_upto(rp->r, rp->pending_last, now_ms());
    rp->pending_last = 0;
}

/* ---- repl_io ---- */

static void cfg_text(const repl_config *c, char *out, size_t len)
{
    int o = snprintf(out, len, "%" PRIu32 " %" PRIu64 " %" PRIu64 " %zu", c->shard, c->version,
                     c->primary, c->nsec);
    for (size_t i = 0; i < c->nsec && o < (int)len; i++)
        o += snprintf(out + o, len - (size_t)o, " %" PRIu64, c->secondaries[i]);
    if (o < (int)len) o += snprintf(out + o, len - (size_t)o, " %zu", c->nlearn);
    for (size_t i = 0; i < c->nlearn && o < (int)len; i++)
        o += snprintf(out + o, len - (size_t)o, " %" PRIu64, c->learners[i]);
}

static bool cfg_parse_text(const resp_arg *a, repl_config *c)
{
    char buf[1024];
    if (a->len >= sizeof(buf)) return false;
    memcpy(buf, a->p, a->len);
    buf[a->len] = '\0';
    memset(c, 0, sizeof(*c));
    char *s = buf, *end;
    unsigned long long v[4];
    for (int i = 0; i < 4; i++) {
        errno = 0;
        v[i] = strtoull(s, &end, 10);
        if (end == s || errno) return false;
        s = end;
    }
    c->shard = (uint32_t)v[0];
    c->version = v[1];
    c->primary = v[2];
    if (v[3] > REPL_MAX_MEMBERS) return false;
    c->nsec = (size_t)v[3];
    for (size_t i = 0; i < c->nsec; i++) {
        c->secondaries[i] = strtoull(s, &end, 10);
        if (end == s) return false;
        s = end;
    }
    unsigned long long nl = strtoull(s, &end, 10);
    if (end == s || nl > REPL_MAX_MEMBERS) return false;
    s = end;
    c->nlearn = (size_t)nl;
    for (size_t i = 0; i < c->nlearn; i++) {
        c->learners[i] = strtoull(s, &end, 10);
        if (end == s) return false;
        s = end;
    }
    return true;
}

static void io_send(void *data, const repl_msg *m)
{
    replica_t *rp = data;
    peer *p = peer_find(rp, m->to);
    if (!p || !p->conn) return; /* no address yet: the state machine retries */
    size_t argc = 15 + 3 * m->nentries;
    const char **argv = cairn_malloc(argc * sizeof(*argv));
    size_t *lens = cairn_malloc(argc * sizeof(*lens));
    char (*num)[24] = cairn_malloc((11 + 2 * m->nentries) * sizeof(*num));
    char cfg[1024] = "";
    size_t k = 0, nn = 0;
#define ARG_S(s) (argv[k] = (s), lens[k] = strlen(s), k++)
#define ARG_U(v) (lens[k] = u64_to_str(num[nn], (uint64_t)(v)), argv[k++] = num[nn++])
    ARG_S("CAIRN");
    ARG_S("REPL");
    ARG_S(repl_msg_name(m->type));
    ARG_U(m->shard);
    ARG_U(m->version);
    ARG_U(m->from);
    ARG_S(rp->addr);
    ARG_U(m->to);
    ARG_U(m->sent_at);
    ARG_U(m->commit);
    ARG_U(m->lsn);
    ARG_U(m->entry_version);
    if (m->cfg) cfg_text(m->cfg, cfg, sizeof(cfg));
    ARG_S(cfg);
    ARG_U(m->flags);
    ARG_U(m->nentries);
    for (size_t i = 0; i < m->nentries; i++) {
        ARG_U(m->entries[i].lsn);
        ARG_U(m->entries[i].version);
        argv[k] = m->entries[i].payload;
        lens[k++] = m->entries[i].len;
    }
#undef ARG_S
#undef ARG_U
    rconn_send(p->conn, k, argv, lens, ignore_reply, NULL);
    cairn_free(argv);
    cairn_free(lens);
    cairn_free(num);
}

static int io_read_log(void *data, uint64_t from, size_t max, repl_entry *out)
{
    replica_t *rp = data;
    if (from > rp->n->last_lsn) return 0;
    if (rp->bl_n == 0) return -1;
    uint64_t first = bl_at(rp, 0)->lsn;
    if (from < first) return -1;
    size_t i = (size_t)(from - first), k = 0;
    for (; i < rp->bl_n && k < max; i++, k++) {
        bl_ent *e = bl_at(rp, i);
        out[k] = (repl_entry){e->lsn, e->version, e->p, e->len};
    }
    return (int)k;
}

static int64_t io_entry_version(void *data, uint64_t lsn)
{
    replica_t *rp = data;
    if (rp->bl_n) {
        uint64_t first = bl_at(rp, 0)->lsn;
        if (lsn >= first && lsn < first + rp->bl_n) return bl_at(rp, (size_t)(lsn - first))->version;
    }
    return persist_entry_version(rp->n, lsn);
}

static void snap_send_next(snap_send *s);

static void io_send_snapshot(void *data, uint64_t to)
{
    replica_t *rp = data;
    for (size_t i = 0; i < rp->nsnap_waiting; i++)
        if (rp->snap_waiting[i] == to) return;
    if (rp->nsnap_waiting < MAX_PEERS) rp->snap_waiting[rp->nsnap_waiting++] = to;
    if (!persist_bgsave_running(rp->n)) {
        log_notice("replica %016" PRIx64 " needs a full snapshot: taking one", to);
        if (persist_bgsave(rp->n, NULL) < 0) {
            rp->nsnap_waiting--;
            repl_snapshot_failed(rp->r, to, now_ms());
        }
    }
}

static void apply_entries(replica_t *rp, const repl_entry *e, size_t cnt)
{
    node_t *n = rp->n;
    resp_limits lim = {.max_bulk = SIZE_MAX / 2, .max_args = SIZE_MAX / 64, .max_inline = 1u << 16};
    resp_parser parser;
    resp_parser_init(&parser, &lim);
    n->loading = true; /* no expiry, no re-logging: apply exactly */
    for (size_t i = 0; i < cnt; i++) {
        assert(e[i].lsn == n->last_lsn + 1);
        /* A transaction is one entry: applied here whole or not at all. */
        if (db_apply_record(n, &parser, e[i].lsn, e[i].payload, e[i].len) < 0) {
            log_error("entry LSN %" PRIu64 " from the primary is not a command; logged as is",
                      e[i].lsn);
        }
        persist_append_raw(n->persist, e[i].lsn, (uint32_t)e[i].version, e[i].payload, e[i].len);
        n->last_lsn = e[i].lsn;
        n->last_version = e[i].version;
        bl_push(rp, e[i].lsn, (uint32_t)e[i].version, e[i].payload, e[i].len);
    }
    n->loading = false;
    resp_parser_close(&parser);
}

static void io_append(void *data, const repl_entry *e, size_t cnt) { apply_entries(data, e, cnt); }

static void apply_config_json(replica_t *rp, const char *json, size_t len);

static void mgr_config_reply(void *arg, const char *reply, size_t len)
{
    replica_t *rp = arg;
    if (rp->stopping) return;
    resp_value *v = NULL;
    size_t used;
    if (!reply || resp_read_value(reply, len, &v, &used) < 0) return;
    if (v->type == RESP_BULK || v->type == RESP_STRING) apply_config_json(rp, v->s, v->len);
    else if (v->type == RESP_ERROR) log_warn("manager refused: %.*s", (int)v->len, v->s);
    resp_value_free(v);
}

static void io_request_remove(void *data, const repl_config *cfg, uint64_t victim)
{
    replica_t *rp = data;
    char shard[16], ver[24], vic[17];
    snprintf(shard, sizeof(shard), "%" PRIu32, cfg->shard);
    snprintf(ver, sizeof(ver), "%" PRIu64, cfg->version);
    hex_id(victim, vic);
    log_warn("asking the manager to remove %s from shard %s (configuration %s)", vic, shard, ver);
    if (rp->mgr) rconn_sendv(rp->mgr, mgr_config_reply, rp, 6, "CAIRN", "REMOVE", shard, ver, vic, rp->self_hex);
}

static void io_request_promote(void *data, const repl_config *cfg, uint64_t node)
{
    replica_t *rp = data;
    char shard[16], ver[24], id[17];
    snprintf(shard, sizeof(shard), "%" PRIu32, cfg->shard);
    snprintf(ver, sizeof(ver), "%" PRIu64, cfg->version);
    hex_id(node, id);
    log_notice("learner %s has caught up: asking the manager to make it a secondary", id);
    if (rp->mgr) rconn_sendv(rp->mgr, mgr_config_reply, rp, 6, "CAIRN", "PROMOTE", shard, ver, id, rp->self_hex);
}

static void io_committed(void *data, uint64_t commit)
{
    replica_t *rp = data;
    if (commit > rp->n->commit_lsn) rp->n->commit_lsn = commit;
}

static void io_serving(void *data, bool serving)
{
    replica_t *rp = data;
    const repl_config *c = repl_config_get(rp->r);
    log_notice("%s serving shard %" PRIu32 " (configuration %" PRIu64 ")",
               serving ? "now" : "no longer", c->shard, c->version);
}

/* ---- configuration from the manager ---- */

static bool json_ids(json_t *arr, uint64_t *out, size_t *n)
{
    *n = 0;
    if (!json_is_array(arr)) return arr == NULL;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (*n == REPL_MAX_MEMBERS || !parse_hex(json_string_value(v), &out[*n])) return false;
        (*n)++;
    }
    return true;
}

/* The last configuration version this node acted in survives restarts
 * (DIR/repl.version): after a restart it acts at no version up to it, so it
 * cannot grant leases again to a primary it already asked to remove. */
static void save_version(replica_t *rp)
{
    uint64_t v = repl_config_get(rp->r)->version;
    if (v <= rp->saved_version) return;
    char path[4096], tmp[4200];
    snprintf(path, sizeof(path), "%s/repl.version", rp->n->cfg.dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        log_error("cannot write %s: %s", tmp, strerror(errno));
        return;
    }
    fprintf(f, "%" PRIu64 "\n", v);
    fflush(f);
    fsync(fileno(f));
    fclose(f);
    if (rename(tmp, path) == 0) rp->saved_version = v;
}

static uint64_t load_version(node_t *n)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/repl.version", n->cfg.dir);
    FILE *f = fopen(path, "r");
    unsigned long long v = 0;
    if (f) {
        if (fscanf(f, "%llu", &v) != 1) v = 0;
        fclose(f);
    }
    return v;
}

static void set_role(replica_t *rp)
{
    node_t *n = rp->n;
    save_version(rp);
    enum repl_role role = repl_role(rp->r);
    if (role == rp->role) return;
    if (rp->role == REPL_PRIMARY) {
        /* Demoted: a write whose reply is held beyond the commit index may
         * or may not survive (the new primary may not have it); its client
         * gets a closed connection, never a false OK.  Replies held only up
         * to the commit index are committed and still go out.  After a
         * drained hand-over (a switchover) there are none of the first
         * kind: the commit index is the last LSN. */
        for (client_t *c = n->clients, *next; c; c = next) {
            next = c->next;
            if (c->nmarks && c->marks[c->nmarks - 1].lsn > n->commit_lsn) client_close(c);
        }
    }
    rp->role = role;
    const repl_config *cfg = repl_config_get(rp->r);
    log_notice("role in shard %" PRIu32 " is now %s (configuration %" PRIu64 ")", cfg->shard,
               role == REPL_PRIMARY ? "primary" : role == REPL_SECONDARY ? "secondary"
               : role == REPL_LEARNER ? "learner" : "none",
               cfg->version);
}

static void apply_config_json(replica_t *rp, const char *json, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    if (!root) {
        log_warn("unreadable configuration from the manager: %s", jerr.text);
        return;
    }
    json_t *sh = json_object_get(root, "shard");
    if (json_is_object(sh)) root = (json_incref(sh), json_decref(root), sh);
    else if (json_is_null(sh)) {
        json_decref(root);
        return;
    }
    repl_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.shard = (uint32_t)json_integer_value(json_object_get(root, "shard"));
    cfg.version = (uint64_t)json_integer_value(json_object_get(root, "version"));
    rp->replicas = (uint32_t)json_integer_value(json_object_get(root, "replicas"));
    bool ok = parse_hex(json_string_value(json_object_get(root, "primary")), &cfg.primary) &&
              json_ids(json_object_get(root, "secondaries"), cfg.secondaries, &cfg.nsec) &&
              json_ids(json_object_get(root, "learners"), cfg.learners, &cfg.nlearn);
    json_t *addrs = json_object_get(root, "addrs");
    if (ok && json_is_object(addrs)) {
        const char *k;
        json_t *v;
        json_object_foreach(addrs, k, v)
        {
            uint64_t id;
            if (parse_hex(k, &id)) peer_set(rp, id, json_string_value(v));
        }
    }
    json_decref(root);
    if (!ok || cfg.version == 0) {
        log_warn("malformed configuration from the manager");
        return;
    }
    hand_over(rp);
    repl_set_config(rp->r, &cfg, now_ms());
    const repl_config *cur = repl_config_get(rp->r);
    if (repl_role(rp->r) == REPL_PRIMARY) rp->n->cfg_version = (uint32_t)cur->version;
    set_role(rp);
}

/* ---- heartbeats ---- */

static void mgr_rotate(replica_t *rp)
{
    if (rp->mgr) rconn_destroy(rp->mgr);
    rp->mgr_idx = (rp->mgr_idx + 1) % rp->nmgr;
    rconn_opts o = {.connect_timeout_ms = 300, .reply_timeout_ms = 1000};
    rp->mgr = rconn_create(rp->n->loop, rp->mgrs[rp->mgr_idx], &o);
}

static void hb_reply(void *arg, const char *reply, size_t len)
{
    replica_t *rp = arg;
    rp->hb_inflight = false;
    if (rp->stopping) return;
    resp_value *v = NULL;
    size_t used;
    if (!reply || resp_read_value(reply, len, &v, &used) < 0) {
        if (rp->nmgr > 1) mgr_rotate(rp);
        return;
    }
    if (v->type == RESP_ERROR) {
        if (rp->nmgr > 1) mgr_rotate(rp);
    } else if (v->type == RESP_BULK || v->type == RESP_STRING) {
        rp->last_mgr_ok = now_ms();
        apply_config_json(rp, v->s, v->len);
    }
    resp_value_free(v);
}

static const char *role_name(enum repl_role r)
{
    return r == REPL_PRIMARY ? "primary" : r == REPL_SECONDARY ? "secondary"
           : r == REPL_LEARNER ? "learner" : "none";
}

static void heartbeat(replica_t *rp)
{
    node_t *n = rp->n;
    if (rp->hb_inflight || !rp->mgr) return;
    const repl_config *c = repl_config_get(rp->r);
    char json[1024];
    snprintf(json, sizeof(json),
             "{\"id\":\"%s\",\"addr\":\"%s\",\"zone\":\"%s\",\"weight\":%lld,\"shard\":%" PRIu32
             ",\"version\":%" PRIu64 ",\"role\":\"%s\",\"last_lsn\":%" PRIu64
             ",\"durable_lsn\":%" PRIu64 ",\"commit_lsn\":%" PRIu64 ",\"floor\":%" PRIu64
             ",\"drain\":true}",
             rp->self_hex, rp->addr, n->cfg.zone, (long long)n->cfg.weight, c->shard, c->version,
             role_name(repl_role(rp->r)), n->last_lsn, n->durable_lsn, n->commit_lsn,
             rp->saved_version);
    if (rconn_sendv(rp->mgr, hb_reply, rp, 3, "CAIRN", "HEARTBEAT", json) == 0) rp->hb_inflight = true;
    rp->last_hb = now_ms();
}

/* Log the steps of a hand-over as they happen (after any repl call that
 * may take one). */
static void drain_note(replica_t *rp)
{
    enum repl_drain d = repl_drain_state(rp->r);
    const repl_config *cfg = repl_config_get(rp->r);
    if (d == rp->drain) return;
    if (d == REPL_DRAIN_DRAINED)
        log_notice("shard %" PRIu32 " drained at LSN %" PRIu64 " (configuration %" PRIu64
                   "): every secondary holds the whole log",
                   cfg->shard, rp->n->last_lsn, cfg->version);
    else if (d == REPL_DRAIN_NONE && repl_role(rp->r) == REPL_PRIMARY &&
             cfg->version == rp->drain_version)
        log_notice("hand-over of shard %" PRIu32 " called off (configuration %" PRIu64
                   " still current): serving again once the secondaries answer",
                   cfg->shard, cfg->version);
    rp->drain = d;
}

static void on_tick(uv_timer_t *t)
{
    replica_t *rp = t->data;
    int64_t now = now_ms();
    hand_over(rp);
    repl_tick(rp->r, now);
    set_role(rp);
    drain_note(rp);
    if (now - rp->last_hb >= HEARTBEAT_MS) heartbeat(rp);
}

/* ---- snapshot transfer (primary side) ---- */

static void snap_send_done(void *arg, const char *reply, size_t len)
{
    snap_send *s = arg;
    replica_t *rp = s->rep;
    bool ok = reply && len && reply[0] == '+';
    if (rp->stopping) {
        close(s->fd);
        cairn_free(s);
        return;
    }
    if (ok) {
        log_notice("snapshot at LSN %" PRIu64 " delivered to %016" PRIx64, s->lsn, s->to);
        hand_over(rp);
        repl_snapshot_sent(rp->r, s->to, s->lsn, now_ms());
    } else {
        log_warn("snapshot transfer to %016" PRIx64 " failed", s->to);
        repl_snapshot_failed(rp->r, s->to, now_ms());
    }
    close(s->fd);
    cairn_free(s);
}

static void snap_chunk_reply(void *arg, const char *reply, size_t len)
{
    snap_send *s = arg;
    if (!reply || !len || reply[0] != '+') {
        snap_send_done(s, NULL, 0);
        return;
    }
    snap_send_next(s);
}

static void snap_send_next(snap_send *s)
{
    replica_t *rp = s->rep;
    peer *p = peer_find(rp, s->to);
    if (!p || !p->conn) {
        snap_send_done(s, NULL, 0);
        return;
    }
    char from[24], ver[24], a[24], b[24], c[24];
    snprintf(from, sizeof(from), "%" PRIu64, rp->self);
    snprintf(ver, sizeof(ver), "%" PRIu64, repl_config_get(rp->r)->version);
    if (s->off >= s->size) {
        snprintf(a, sizeof(a), "%" PRIu64, s->lsn);
        snprintf(b, sizeof(b), "%" PRIu32, s->version);
        snprintf(c, sizeof(c), "%" PRIu64, s->size);
        rconn_sendv(p->conn, snap_send_done, s, 7, "CAIRN", "SNAPEND", from, ver, a, b, c);
        return;
    }
    size_t want = s->size - s->off < SNAP_CHUNK ? (size_t)(s->size - s->off) : SNAP_CHUNK;
    char *buf = cairn_malloc(want);
    ssize_t got = pread(s->fd, buf, want, (off_t)s->off);
    if (got != (ssize_t)want) {
        cairn_free(buf);
        snap_send_done(s, NULL, 0);
        return;
    }
    snprintf(a, sizeof(a), "%" PRIu64, s->off);
    const char *argv[6] = {"CAIRN", "SNAPCHUNK", from, ver, a, buf};
    size_t lens[6] = {5, 9, strlen(from), strlen(ver), strlen(a), want};
    s->off += want;
    if (rconn_send(p->conn, 6, argv, lens, snap_chunk_reply, s) < 0) {
        cairn_free(buf);
        snap_send_done(s, NULL, 0);
        return;
    }
    cairn_free(buf);
}

void replica_snapshot_done(node_t *n, bool ok, uint64_t lsn)
{
    replica_t *rp = n->replica;
    if (!rp || rp->nsnap_waiting == 0) return;
    for (size_t i = 0; i < rp->nsnap_waiting; i++) {
        uint64_t to = rp->snap_waiting[i];
        int fd = ok ? open(persist_snapshot_path(n), O_RDONLY | O_CLOEXEC) : -1;
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            if (fd >= 0) close(fd);
            repl_snapshot_failed(rp->r, to, now_ms());
            continue;
        }
        snap_send *s = cairn_calloc(1, sizeof(*s));
        s->rep = rp;
        s->to = to;
        s->fd = fd;
        s->size = (uint64_t)st.st_size;
        s->lsn = lsn;
        int64_t v = persist_entry_version(n, lsn);
        s->version = v < 0 ? 0 : (uint32_t)v;
        log_notice("sending snapshot at LSN %" PRIu64 " (%" PRIu64 " bytes) to %016" PRIx64, lsn,
                   s->size, to);
        snap_send_next(s);
    }
    rp->nsnap_waiting = 0;
}

/* ---- incoming CAIRN commands ---- */

static void cmd_repl(client_t *c, replica_t *rp)
{
    /* CAIRN REPL type shard version from from-addr to sent_at commit lsn ev cfg flags n
     *            [lsn ver payload]* */
    if (c->argc < 15) {
        reply_error(&c->out, "ERR CAIRN REPL: too few arguments");
        return;
    }
    repl_msg m;
    memset(&m, 0, sizeof(m));
    const resp_arg *a = c->argv;
    int t = -1;
    for (int i = REPL_SYNC; i <= REPL_REJECT; i++) /* PROGRESS included */
        if (arg_eq(&a[2], repl_msg_name((enum repl_msg_type)i))) t = i;
    uint64_t shard, sent_at, nent, flags;
    repl_config cfg;
    if (t < 0 || !arg_u64(&a[3], &shard) || !arg_u64(&a[4], &m.version) || !arg_u64(&a[5], &m.from) ||
        !arg_u64(&a[7], &m.to) || !arg_u64(&a[8], &sent_at) || !arg_u64(&a[9], &m.commit) ||
        !arg_u64(&a[10], &m.lsn) || !arg_u64(&a[11], &m.entry_version) || !arg_u64(&a[13], &flags) ||
        flags > UINT32_MAX || !arg_u64(&a[14], &nent) || nent > c->argc || c->argc != 15 + 3 * nent) {
        reply_error(&c->out, "ERR CAIRN REPL: malformed message");
        return;
    }
    m.type = (enum repl_msg_type)t;
    m.flags = (uint32_t)flags;
    m.shard = (uint32_t)shard;
    m.sent_at = (int64_t)sent_at;
    if (a[12].len) {
        if (!cfg_parse_text(&a[12], &cfg)) {
            reply_error(&c->out, "ERR CAIRN REPL: malformed configuration");
            return;
        }
        m.cfg = &cfg;
    }
    char addr[96];
    snprintf(addr, sizeof(addr), "%.*s", (int)(a[6].len < 90 ? a[6].len : 90), a[6].p);
    peer_set(rp, m.from, addr);
    repl_entry *ents = NULL;
    if (nent) {
        ents = cairn_malloc(nent * sizeof(*ents));
        for (size_t i = 0; i < nent; i++) {
            const resp_arg *e = &a[15 + 3 * i];
            if (!arg_u64(&e[0], &ents[i].lsn) || !arg_u64(&e[1], &ents[i].version)) {
                cairn_free(ents);
                reply_error(&c->out, "ERR CAIRN REPL: malformed entry");
                return;
            }
            ents[i].payload = e[2].p;
            ents[i].len = e[2].len;
        }
        m.entries = ents;
        m.nentries = nent;
    }
    c->flags |= CLIENT_NOHOLD;
    if (m.type == REPL_SYNC || m.type == REPL_APPEND) {
        rp->stream_client = c->id;
        rp->stream_from = m.from;
        rp->stream_version = m.version;
    }
    hand_over(rp);
    repl_recv(rp->r, &m, now_ms());
    cairn_free(ents);
    set_role(rp);
    drain_note(rp);
    if (repl_role(rp->r) == REPL_PRIMARY) rp->n->cfg_version = (uint32_t)repl_config_get(rp->r)->version;
    reply_ok(&c->out);
}

static void recv_path(node_t *n, char *out, size_t len) { snprintf(out, len, "%s/snapshot.recv", n->cfg.dir); }

static void cmd_snapchunk(client_t *c, replica_t *rp)
{
    uint64_t from, ver, off;
    if (c->argc != 6 || !arg_u64(&c->argv[2], &from) || !arg_u64(&c->argv[3], &ver) ||
        !arg_u64(&c->argv[4], &off)) {
        reply_error(&c->out, "ERR CAIRN SNAPCHUNK: malformed");
        return;
    }
    c->flags |= CLIENT_NOHOLD;
    if (ver < repl_config_get(rp->r)->version) { /* invariant 1 */
        reply_errorf(&c->out, "STALE %" PRIu64, repl_config_get(rp->r)->version);
        return;
    }
    char path[4200];
    recv_path(rp->n, path, sizeof(path));
    if (off == 0) {
        if (rp->recv_fd >= 0) close(rp->recv_fd);
        rp->recv_fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        rp->recv_size = 0;
    }
    if (rp->recv_fd < 0 || off != rp->recv_size) {
        reply_error(&c->out, "ERR CAIRN SNAPCHUNK: out of order");
        return;
    }
    const resp_arg *d = &c->argv[5];
    if (pwrite(rp->recv_fd, d->p, d->len, (off_t)off) != (ssize_t)d->len) {
        reply_errorf(&c->out, "ERR CAIRN SNAPCHUNK: write failed: %s", strerror(errno));
        return;
    }
    rp->recv_size += d->len;
    reply_ok(&c->out);
}

static void cmd_snapend(client_t *c, replica_t *rp)
{
    node_t *n = rp->n;
    uint64_t from, ver, lsn, ev, size;
    if (c->argc != 7 || !arg_u64(&c->argv[2], &from) || !arg_u64(&c->argv[3], &ver) ||
        !arg_u64(&c->argv[4], &lsn) || !arg_u64(&c->argv[5], &ev) || !arg_u64(&c->argv[6], &size)) {
        reply_error(&c->out, "ERR CAIRN SNAPEND: malformed");
        return;
    }
    c->flags |= CLIENT_NOHOLD;
    if (rp->recv_fd < 0 || size != rp->recv_size) {
        reply_error(&c->out, "ERR CAIRN SNAPEND: incomplete transfer");
        return;
    }
    if (!repl_snapshot_wanted(rp->r, from, ver, lsn)) { /* stale or out of order */
        close(rp->recv_fd);
        rp->recv_fd = -1;
        reply_error(&c->out, "ERR CAIRN SNAPEND: snapshot not wanted (stale version or position)");
        return;
    }
    fsync(rp->recv_fd);
    close(rp->recv_fd);
    rp->recv_fd = -1;
    char path[4200], msg[512];
    recv_path(n, path, sizeof(path));
    ks_t *fresh = ks_create();
    uint64_t got_lsn;
    uint32_t got_v;
    int rc = snap_load(path, fresh, &got_lsn, &got_v, msg, sizeof(msg));
    if (rc < 0 || got_lsn != lsn) {
        ks_destroy(fresh);
        log_error("received snapshot is unusable: %s", rc < 0 ? msg : "LSN mismatch");
        reply_error(&c->out, "ERR CAIRN SNAPEND: snapshot unusable");
        return;
    }
    if (rename(path, persist_snapshot_path(n)) < 0 || persist_reset(n, lsn, (uint32_t)ev) < 0) {
        ks_destroy(fresh);
        reply_errorf(&c->out, "ERR CAIRN SNAPEND: cannot install: %s", strerror(errno));
        return;
    }
    ks_destroy(n->ks);
    n->ks = fresh;
    watch_touch_all(n); /* every key may have changed under a WATCH */
    n->last_lsn = n->durable_lsn = lsn;
    n->last_version = ev;
    /* commit_lsn is not raised: a snapshot may hold uncommitted entries;
     * commit comes only from the primary (io->committed). */
    bl_clear(rp);
    log_notice("installed a snapshot from the primary: %zu keys at LSN %" PRIu64, ks_size(n->ks), lsn);
    hand_over(rp);
    repl_snapshot_loaded(rp->r, lsn, ev, now_ms());
    reply_ok(&c->out);
}

static void cmd_status(client_t *c, replica_t *rp)
{
    node_t *n = c->node;
    const repl_config *cfg = repl_config_get(rp->r);
    char buf[1024];
    int l = snprintf(buf, sizeof(buf),
                     "{\"id\":\"%s\",\"role\":\"%s\",\"shard\":%" PRIu32 ",\"version\":%" PRIu64
                     ",\"serving\":%s,\"last_lsn\":%" PRIu64 ",\"durable_lsn\":%" PRIu64
                     ",\"commit_lsn\":%" PRIu64 ",\"keys\":%zu}",
                     rp->self_hex, role_name(repl_role(rp->r)), cfg->shard, cfg->version,
                     replica_serving(n) ? "true" : "false", n->last_lsn, n->durable_lsn, n->commit_lsn,
                     ks_size(n->ks));
    reply_bulk(&c->out, buf, (size_t)l);
}

/* ---- switchover: the manager's commands ---- */

/* The reply of DRAIN, DRAIN-STATUS and RESUME (see the top of the file). */
static void drain_reply(client_t *c, replica_t *rp, uint64_t target)
{
    int64_t now = now_ms();
    enum repl_drain d = repl_drain_state(rp->r);
    int64_t left = d == REPL_DRAIN_NONE ? 0 : repl_drain_until(rp->r) - now;
    char buf[512];
    int l = snprintf(buf, sizeof(buf),
                     "{\"state\":\"%s\",\"version\":%" PRIu64 ",\"last_lsn\":%" PRIu64
                     ",\"commit_lsn\":%" PRIu64 ",\"target_match\":%" PRIu64
                     ",\"left_ms\":%lld}",
                     repl_drain_name(d), repl_config_get(rp->r)->version, repl_last_lsn(rp->r),
                     repl_commit(rp->r), target ? repl_match(rp->r, target) : 0,
                     (long long)(left > 0 ? left : 0));
    reply_bulk(&c->out, buf, (size_t)l);
}

/* Parse <shard> <version> (argv[2], argv[3]) and check that this node is
 * their primary; else answer the error and return false. */
static bool drain_args(client_t *c, replica_t *rp, uint64_t *version)
{
    uint64_t shard;
    const repl_config *cfg = repl_config_get(rp->r);
    if (!arg_u64(&c->argv[2], &shard) || !arg_u64(&c->argv[3], version)) {
        reply_errorf(&c->out, "ERR CAIRN %.*s: shard and version must be integers",
                     (int)c->argv[1].len, c->argv[1].p);
        return false;
    }
    if (repl_role(rp->r) != REPL_PRIMARY || cfg->shard != shard || cfg->version != *version) {
        reply_errorf(&c->out,
                     "ERR not the primary of shard %" PRIu64 " at configuration %" PRIu64
                     " (this node: %s of shard %" PRIu32 " at configuration %" PRIu64 ")",
                     shard, *version, role_name(repl_role(rp->r)), cfg->shard, cfg->version);
        return false;
    }
    return true;
}

/* CAIRN DRAIN <shard> <version> <ms> <target> */
static void cmd_drain(client_t *c, replica_t *rp)
{
    uint64_t version, ms, target;
    c->flags |= CLIENT_NOHOLD; /* a status, never held behind the commit index */
    if (!drain_args(c, rp, &version)) return;
    if (!arg_u64(&c->argv[4], &ms) || ms == 0 || ms > 60000 ||
        !parse_hex_arg(&c->argv[5], &target)) {
        reply_error(&c->out, "ERR CAIRN DRAIN: want <shard> <version> <ms 1..60000> <target id>");
        return;
    }
    int64_t now = now_ms();
    hand_over(rp); /* entries logged this turn belong before the fence */
    bool was = repl_drain_state(rp->r) != REPL_DRAIN_NONE;
    if (!repl_drain_start(rp->r, version, now + (int64_t)ms, now)) {
        reply_errorf(&c->out, "ERR this primary has seen a configuration newer than %" PRIu64
                              " and acts on nothing until it arrives",
                     version);
        return;
    }
    if (!was)
        log_notice("handing over shard %" PRIu32 " (configuration %" PRIu64
                   ") to %016" PRIx64 ": no reads or writes for at most %" PRIu64
                   " ms; last LSN %" PRIu64 ", committed %" PRIu64,
                   repl_config_get(rp->r)->shard, version, target, ms, rp->n->last_lsn,
                   rp->n->commit_lsn);
    rp->drain_version = version;
    drain_note(rp);
    drain_reply(c, rp, target);
}

/* CAIRN DRAIN-STATUS <shard> <version> <target> */
static void cmd_drain_status(client_t *c, replica_t *rp)
{
    uint64_t version, target;
    c->flags |= CLIENT_NOHOLD;
    if (!drain_args(c, rp, &version)) return;
    if (!parse_hex_arg(&c->argv[4], &target)) {
        reply_error(&c->out, "ERR CAIRN DRAIN-STATUS: want <shard> <version> <target id>");
        return;
    }
    drain_reply(c, rp, target);
}

/* CAIRN RESUME <shard> <version> */
static void cmd_resume(client_t *c, replica_t *rp)
{
    uint64_t version;
    c->flags |= CLIENT_NOHOLD;
    if (!drain_args(c, rp, &version)) return;
    repl_drain_stop(rp->r, now_ms());
    drain_note(rp);
    drain_reply(c, rp, 0);
}

/* CAIRN CONFIG <json>: a configuration pushed by the manager. */
static void cmd_push_config(client_t *c, replica_t *rp)
{
    c->flags |= CLIENT_NOHOLD;
    apply_config_json(rp, c->argv[2].p, c->argv[2].len);
    reply_ok(&c->out);
}

/* CAIRN AFTER lsn command [arg ...]: run the command once this node has
 * applied its log up to `lsn`, else answer -TRYAGAIN without running it.
 * The gateway wraps a replica read in it with the LSN of the client's last
 * write on the shard (read-your-writes); on TRYAGAIN it reads from the
 * primary instead. */
static void cmd_after(client_t *c)
{
    int64_t lsn;
    if (!str_to_i64(c->argv[2].p, c->argv[2].len, &lsn) || lsn < 0) {
        reply_error(&c->out, "ERR CAIRN AFTER: the LSN must be a non-negative integer");
        return;
    }
    if (arg_eq(&c->argv[3], "cairn")) {
        reply_error(&c->out, "ERR CAIRN AFTER wraps data commands only");
        return;
    }
    if (c->node->last_lsn < (uint64_t)lsn) {
        reply_errorf(&c->out, "TRYAGAIN this node has applied its log up to LSN %" PRIu64 ", not %" PRId64 " yet",
                     c->node->last_lsn, lsn);
        return;
    }
    resp_arg *argv = c->argv;
    size_t argc = c->argc;
    c->argv += 3;
    c->argc -= 3;
    client_exec(c);
    c->argv = argv;
    c->argc = argc;
}

void replica_cmd(client_t *c)
{
    replica_t *rp = c->node->replica;
    const resp_arg *sub = &c->argv[1];
    if (!rp) {
        if (arg_eq(sub, "id")) reply_null(&c->out, c->proto);
        else if ((arg_eq(sub, "readonly") || arg_eq(sub, "readwrite")) && c->argc == 2) reply_ok(&c->out);
        else reply_error(&c->out, "ERR this node is standalone (started without --manager)");
        return;
    }
    if (arg_eq(sub, "readonly") && c->argc == 2) {
        c->flags |= CLIENT_READONLY;
        reply_ok(&c->out);
    } else if (arg_eq(sub, "readwrite") && c->argc == 2) {
        c->flags &= ~CLIENT_READONLY;
        reply_ok(&c->out);
    } else if (arg_eq(sub, "lsn") && c->argc == 2) {
        reply_int(&c->out, (int64_t)c->node->last_lsn); /* after this connection's writes */
    } else if (arg_eq(sub, "after") && c->argc >= 4) {
        cmd_after(c);
    } else if (arg_eq(sub, "repl")) cmd_repl(c, rp);
    else if (arg_eq(sub, "snapchunk")) cmd_snapchunk(c, rp);
    else if (arg_eq(sub, "snapend")) cmd_snapend(c, rp);
    else if (arg_eq(sub, "status") && c->argc == 2) cmd_status(c, rp);
    else if (arg_eq(sub, "drain") && c->argc == 6) cmd_drain(c, rp);
    else if (arg_eq(sub, "drain-status") && c->argc == 5) cmd_drain_status(c, rp);
    else if (arg_eq(sub, "resume") && c->argc == 4) cmd_resume(c, rp);
    else if (arg_eq(sub, "config") && c->argc == 3) cmd_push_config(c, rp);
    else if (arg_eq(sub, "id") && c->argc == 2) reply_bulk_str(&c->out, rp->self_hex);
    else reply_unknown_sub(c, "CAIRN");
}

/* ---- hooks from the node ---- */

void replica_local_append(node_t *n, uint64_t lsn, const char *payload, size_t len)
{
    replica_t *rp = n->replica;
    bl_push(rp, lsn, n->cfg_version, payload, len);
    rp->pending_last = lsn; /* streamed by replica_before_sleep */
}

void replica_before_sleep(node_t *n)
{
    if (n->replica) hand_over(n->replica);
}

void replica_stream_progress(client_t *c)
{
    replica_t *rp = c->node->replica;
    if (!rp || c->id != rp->stream_client) return;
    /* repl checks that it is the current primary at the current version. */
    repl_stream_progress(rp->r, rp->stream_from, rp->stream_version, buf_unread(&c->query),
                         now_ms());
}

void replica_flush_links(node_t *n)
{
    replica_t *rp = n->replica;
    if (!rp) return;
    for (size_t i = 0; i < rp->npeers; i++)
        if (rp->peers[i].conn) rconn_flush(rp->peers[i].conn);
}

void replica_durable(node_t *n, uint64_t lsn)
{
    replica_t *rp = n->replica;
    /* Entries logged after a demotion in the same loop turn never reached
     * repl: durability is reported only for what it knows. */
    uint64_t known = repl_last_lsn(rp->r);
    repl_local_durable(rp->r, lsn < known ? lsn : known, now_ms());
}

bool replica_serving(node_t *n)
{
    replica_t *rp = n->replica;
    return rp && repl_role(rp->r) == REPL_PRIMARY && repl_can_serve(rp->r, now_ms());
}

bool replica_admit(client_t *c, unsigned flags)
{
    node_t *n = c->node;
    replica_t *rp = n->replica;
    if (!rp || !(flags & (CMD_WRITE | CMD_READONLY)) || (c->flags & CLIENT_REPLAY)) return true;
    const repl_config *cfg = repl_config_get(rp->r);
    enum repl_role role = repl_role(rp->r);
    if (role == REPL_PRIMARY) {
        if (repl_drain_state(rp->r) != REPL_DRAIN_NONE) {
            /* Refused before running: the gateway sends it again, to
             * whichever node is primary by then. */
            reply_errorf(&c->out,
                         "TRYAGAIN cairn: switchover in progress: the primary of shard %" PRIu32
                         " (configuration %" PRIu64 ") is handing over its role",
                         cfg->shard, cfg->version);
            return false;
        }
        if (repl_can_serve(rp->r, now_ms())) return true;
        reply_errorf(&c->out,
                     "TRYAGAIN primary of shard %" PRIu32 " (configuration %" PRIu64
                     ") holds no lease from its secondaries",
                     cfg->shard, cfg->version);
        return false;
    }
    if (cfg->version == 0) {
        reply_error(&c->out, "CLUSTERDOWN this node holds no shard yet");
        return false;
    }
    /* Replica reads (CAIRN READONLY): a secondary holds every committed
     * write; its replies still wait for the commit index the primary sends,
     * so they never reveal an uncommitted write (invariant 3). */
    if (role == REPL_SECONDARY && (c->flags & CLIENT_READONLY) && !(flags & CMD_WRITE)) return true;
    peer *p = peer_find(rp, cfg->primary);
    reply_errorf(&c->out, "NOTPRIMARY %" PRIu64 " %s", cfg->version, p ? p->addr : "-");
    return false;
}

void replica_info(node_t *n, cairn_buf *b)
{
    replica_t *rp = n->replica;
    char line[512];
    if (!rp) {
        buf_append_str(b, "role:master\r\ncairn_role:standalone\r\nconnected_slaves:0\r\n");
        return;
    }
    const repl_config *cfg = repl_config_get(rp->r);
    enum repl_role role = repl_role(rp->r);
    peer *pp = peer_find(rp, cfg->primary);
    int l = snprintf(line, sizeof(line),
                     "role:%s\r\ncairn_role:%s\r\nnode_id:%s\r\nshard:%" PRIu32
                     "\r\nconfig_version:%" PRIu64 "\r\nprimary:%s\r\nserving:%d\r\n"
                     "connected_slaves:%zu\r\nhandover:%s\r\nmanager:%s\r\n"
                     "manager_last_ok_ms_ago:%lld\r\n",
                     role == REPL_PRIMARY ? "master" : "slave", role_name(role), rp->self_hex,
                     cfg->shard, cfg->version, role == REPL_PRIMARY ? rp->addr : pp ? pp->addr : "-",
                     replica_serving(n), role == REPL_PRIMARY ? cfg->nsec + cfg->nlearn : 0,
                     repl_drain_name(repl_drain_state(rp->r)), rp->mgrs[rp->mgr_idx], (long long)(rp->last_mgr_ok ? now_ms() - rp->last_mgr_ok : -1));
    buf_append(b, line, (size_t)l);
    if (role == REPL_PRIMARY) {
        for (size_t i = 0; i < cfg->nsec + cfg->nlearn; i++) {
            uint64_t id = i < cfg->nsec ? cfg->secondaries[i] : cfg->learners[i - cfg->nsec];
            peer *p = peer_find(rp, id);
            uint64_t match = repl_match(rp->r, id);
            l = snprintf(line, sizeof(line), "replica%zu:id=%016" PRIx64 ",addr=%s,state=%s,match_lsn=%" PRIu64
                         ",lag=%" PRIu64 "\r\n", i, id, p ? p->addr : "-",
                         i < cfg->nsec ? "secondary" : "learner", match,
                         n->last_lsn > match ? n->last_lsn - match : 0);
            buf_append(b, line, (size_t)l);
        }
    }
}

/* ---- lifecycle ---- */

int replica_start(node_t *n)
{
    replica_t *rp = cairn_calloc(1, sizeof(*rp));
    rp->n = n;
    rp->recv_fd = -1;
    int rc = load_node_id(n, &rp->self);
    if (rc < 0) {
        cairn_free(rp);
        return rc;
    }
    hex_id(rp->self, rp->self_hex);
    if (n->cfg.advertise && n->cfg.advertise[0])
        snprintf(rp->addr, sizeof(rp->addr), "%s", n->cfg.advertise);
    else
        snprintf(rp->addr, sizeof(rp->addr), "%s:%lld", n->cfg.bind, (long long)n->cfg.port);
    /* managers: comma-separated host:port */
    char *list = cairn_strndup(n->cfg.manager, strlen(n->cfg.manager));
    for (char *save = NULL, *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        rp->mgrs = cairn_realloc(rp->mgrs, (rp->nmgr + 1) * sizeof(*rp->mgrs));
        rp->mgrs[rp->nmgr++] = cairn_strndup(tok, strlen(tok));
    }
    cairn_free(list);
    if (rp->nmgr == 0) {
        log_error("--manager is empty");
        cairn_free(rp);
        return CAIRN_EINVAL;
    }
    rp->mgr_idx = rp->nmgr - 1;
    n->replica = rp;
    mgr_rotate(rp);
    if (!rp->mgr) {
        log_error("bad manager address '%s' (want host:port)", rp->mgrs[rp->mgr_idx]);
        return CAIRN_EINVAL;
    }
    repl_params params = {.lease_ms = n->cfg.repl_lease_ms, .grace_ms = n->cfg.repl_grace_ms,
                          .beacon_ms = n->cfg.repl_lease_ms / 4, .max_batch = 256, .max_inflight = 64};
    repl_io io = {.data = rp, .send = io_send, .read_log = io_read_log,
                  .entry_version = io_entry_version, .send_snapshot = io_send_snapshot,
                  .append = io_append, .request_remove = io_request_remove,
                  .request_promote_learner = io_request_promote, .committed = io_committed,
                  .serving = io_serving};
    rp->r = repl_create(rp->self, &params, &io);
    repl_set_log(rp->r, n->last_lsn, n->last_version, n->durable_lsn);
    rp->saved_version = load_version(n);
    if (rp->saved_version) repl_set_floor(rp->r, rp->saved_version);
    rp->role = REPL_NONE;
    uv_timer_init(n->loop, &rp->timer);
    rp->timer.data = rp;
    uv_timer_start(&rp->timer, on_tick, TICK_MS, TICK_MS);
    log_notice("node %s (%s) joining the cluster through manager %s", rp->self_hex, rp->addr,
               rp->mgrs[rp->mgr_idx]);
    heartbeat(rp);
    return 0;
}

static void on_timer_closed(uv_handle_t *h) { cairn_free(h->data); }

void replica_stop(node_t *n)
{
    replica_t *rp = n->replica;
    if (!rp) return;
    n->replica = NULL;
    rp->stopping = true;
    uv_timer_stop(&rp->timer);
    for (size_t i = 0; i < rp->npeers; i++)
        if (rp->peers[i].conn) rconn_destroy(rp->peers[i].conn);
    if (rp->mgr) rconn_destroy(rp->mgr);
    if (rp->recv_fd >= 0) close(rp->recv_fd);
    repl_destroy(rp->r);
    bl_clear(rp);
    cairn_free(rp->bl);
    for (size_t i = 0; i < rp->nmgr; i++) cairn_free(rp->mgrs[i]);
    cairn_free(rp->mgrs);
    cairn_free(rp->rd);
    /* rp itself is freed when the timer handle has closed */
    uv_close((uv_handle_t *)&rp->timer, on_timer_closed);
}
