/*
 * manager.c — `cairn manager`: start-up, the periodic tick, etcd I/O.
 *
 *   manager_main: settings -> id -> etcd client -> listen -> loop
 *   tick (every MGR_TICK_MS):
 *       elect_tick                  keep the lease / campaign (election.c)
 *       newly active?  load_state   registry + shards from etcd into mstate
 *       every MGR_REPAIR_MS repair  pl_repair on each shard, written by CAS
 *   SIGTERM / SIGINT / SHUTDOWN: mgr_stop -> revoke the lease, exit 0
 *
 * etcd calls are synchronous on the loop thread, each bounded by
 * --etcd-timeout (500 ms by default); election.c backs off after failures
 * so a dead etcd cannot keep the loop blocked back to back.
 */
#include "manager/manager.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "manager/mgr.h"

int64_t mgr_now(void) { return clock_mono_ms(); }

bool mgr_acting(const mgr_t *m)
{
    return !m->stopping && elect_active(&m->el, mgr_now()) && m->loaded_term == m->el.term;
}

/* ---- etcd keys ------------------------------------------------------------ */

static size_t shard_key(const mgr_t *m, uint32_t shard, char *out, size_t len)
{
    return (size_t)snprintf(out, len, "%sshards/%" PRIu32, m->prefix, shard);
}

static size_t node_key(const mgr_t *m, uint64_t id, char *out, size_t len)
{
    return (size_t)snprintf(out, len, "%snodes/%016" PRIx64, m->prefix, id);
}

/* ---- election io ---------------------------------------------------------- */

static int64_t io_now(void *data)
{
    (void)data;
    return mgr_now();
}

static int io_grant(void *data, int64_t ttl_s, int64_t *lease, int64_t *granted)
{
    mgr_t *m = data;
    int rc = etcd_lease_grant(m->etcd, ttl_s, lease, granted);
    if (rc < 0) log_debug("etcd lease grant: %s", etcd_last_error(m->etcd));
    return rc;
}

static int io_keepalive(void *data, int64_t lease, int64_t *ttl)
{
    mgr_t *m = data;
    int rc = etcd_lease_keepalive(m->etcd, lease, ttl);
    if (rc < 0) log_debug("etcd keepalive: %s", etcd_last_error(m->etcd));
    return rc;
}

static int io_campaign(void *data, int64_t lease, char *holder, size_t holderlen)
{
    mgr_t *m = data;
    etcd_kvs cur;
    int rc = etcd_create_if_absent(m->etcd, m->leader_key, strlen(m->leader_key), m->leader_val,
                                   strlen(m->leader_val), lease, &cur);
    if (rc < 0) log_debug("etcd campaign: %s", etcd_last_error(m->etcd));
    if (rc == 0 && cur.n == 1) {
        if (cur.kv[0].lease == lease) rc = 1; /* our own key: an earlier answer was lost */
        else snprintf(holder, holderlen, "%s", cur.kv[0].val);
    }
    etcd_kvs_free(&cur);
    return rc;
}

static int io_revoke(void *data, int64_t lease)
{
    mgr_t *m = data;
    return etcd_lease_revoke(m->etcd, lease);
}

/* ---- state in etcd -------------------------------------------------------- */

static int load_state(mgr_t *m)
{
    char key[256];
    int64_t now = mgr_now();
    etcd_kvs nodes, shards;
    int n = snprintf(key, sizeof(key), "%snodes/", m->prefix);
    int rc = etcd_get_prefix(m->etcd, key, (size_t)n, &nodes);
    if (rc < 0) {
        log_warn("loading the registry from etcd failed: %s", etcd_last_error(m->etcd));
        etcd_kvs_free(&nodes);
        return rc;
    }
    n = snprintf(key, sizeof(key), "%sshards/", m->prefix);
    rc = etcd_get_prefix(m->etcd, key, (size_t)n, &shards);
    if (rc < 0) {
        log_warn("loading shard configurations from etcd failed: %s", etcd_last_error(m->etcd));
        goto out_kvs;
    }
    mstate_clear(&m->st);
    for (size_t i = 0; i < nodes.n; i++) {
        mjson_node info;
        char err[256];
        if (mjson_node_decode(nodes.kv[i].val, nodes.kv[i].vlen, &info, err, sizeof(err)) < 0) {
            log_warn("ignoring registry record %s: %s", nodes.kv[i].key, err);
            continue;
        }
        mstate_node_put(&m->st, &info, nodes.kv[i].mod_rev, now);
    }
    for (size_t i = 0; i < shards.n; i++) {
        pl_shard s;
        char err[256];
        if (mjson_shard_decode(shards.kv[i].val, shards.kv[i].vlen, &s, err, sizeof(err)) < 0) {
            log_warn("ignoring shard record %s: %s", shards.kv[i].key, err);
            continue;
        }
        mstate_shard_put(&m->st, &s, shards.kv[i].mod_rev);
    }
    mstate_reset_health(&m->st, now);
    log_notice("cluster state loaded: %zu nodes, %zu shards", m->st.nnodes, m->st.nshards);
out_kvs:
    etcd_kvs_free(&shards);
    etcd_kvs_free(&nodes);
    return rc;
}

/* Put the shard held in kv (from a read or a lost swap) into the cache. */
static void cache_shard_kv(mgr_t *m, const etcd_kv *kv)
{
    pl_shard s;
    char err[256];
    if (mjson_shard_decode(kv->val, kv->vlen, &s, err, sizeof(err)) < 0) {
        log_warn("shard record %s is malformed: %s", kv->key, err);
        return;
    }
    mstate_shard_put(&m->st, &s, kv->mod_rev);
}

int mgr_shard_cas(mgr_t *m, const pl_shard *next, int64_t expect_mod, const char **why)
{
    char key[256];
    size_t kl = shard_key(m, next->cfg.shard, key, sizeof(key));
    cairn_buf b;
    buf_init(&b);
    json_t *j = mjson_shard_encode(next);
    mjson_append(&b, j);
    json_decref(j);
    etcd_kvs cur;
    int rc = etcd_cas_put(m->etcd, key, kl, expect_mod, b.data, b.len, 0, &cur);
    buf_close(&b);
    if (rc == 1 && cur.n == 1) {
        mstate_shard_put(&m->st, next, cur.kv[0].mod_rev);
    } else if (rc == 1) {
        /* written, but no revision came back: read it to learn mod_rev */
        mgr_shard_reload(m, next->cfg.shard);
    } else if (rc == 0) {
        log_notice("shard %" PRIu32 ": compare-and-swap lost (expected revision %" PRId64
                   "); re-read",
                   next->cfg.shard, expect_mod);
        if (cur.n == 1) cache_shard_kv(m, &cur.kv[0]);
    } else {
        if (why) *why = etcd_last_error(m->etcd);
        log_warn("shard %" PRIu32 ": etcd write failed: %s", next->cfg.shard,
                 etcd_last_error(m->etcd));
    }
    etcd_kvs_free(&cur);
    return rc;
}

int mgr_shard_reload(mgr_t *m, uint32_t shard)
{
    char key[256];
    size_t kl = shard_key(m, shard, key, sizeof(key));
    etcd_kvs cur;
    int rc = etcd_get(m->etcd, key, kl, &cur);
    if (rc == 0 && cur.n == 1) cache_shard_kv(m, &cur.kv[0]);
    if (rc < 0) log_warn("shard %" PRIu32 ": etcd read failed: %s", shard, etcd_last_error(m->etcd));
    etcd_kvs_free(&cur);
    return rc;
}

int mgr_shards_reload(mgr_t *m)
{
    char key[256];
    int n = snprintf(key, sizeof(key), "%sshards/", m->prefix);
    etcd_kvs all;
    int rc = etcd_get_prefix(m->etcd, key, (size_t)n, &all);
    if (rc == 0)
        for (size_t i = 0; i < all.n; i++) cache_shard_kv(m, &all.kv[i]);
    etcd_kvs_free(&all);
    return rc;
}

int mgr_node_store(mgr_t *m, mstate_node *n)
{
    char key[256];
    size_t kl = node_key(m, n->info.id, key, sizeof(key));
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        cairn_buf b;
        buf_init(&b);
        json_t *j = mjson_node_encode(&n->info);
        mjson_append(&b, j);
        json_decref(j);
        etcd_kvs cur;
        rc = etcd_cas_put(m->etcd, key, kl, n->mod_rev, b.data, b.len, 0, &cur);
        buf_close(&b);
        if (rc == 1) {
            if (cur.n == 1) n->mod_rev = cur.kv[0].mod_rev;
            n->stored = true;
            etcd_kvs_free(&cur);
            return 0;
        }
        if (rc == 0) {
            /* Someone wrote the record since we read it (an earlier active
             * manager): keep its weight, which is the operator's, and
             * retry from its revision. */
            mjson_node theirs;
            if (cur.n == 1 && mjson_node_decode(cur.kv[0].val, cur.kv[0].vlen, &theirs, NULL, 0) == 0)
                n->info.weight = theirs.weight;
            n->mod_rev = cur.n == 1 ? cur.kv[0].mod_rev : 0;
        }
        etcd_kvs_free(&cur);
        if (rc < 0) break;
    }
    if (rc < 0)
        log_warn("registering node %016" PRIx64 " in etcd failed: %s", n->info.id,
                 etcd_last_error(m->etcd));
    return rc < 0 ? rc : CAIRN_EAGAIN;
}

static void fmt_ids(char *out, size_t len, const uint64_t *v, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && off < len; i++)
        off += (size_t)snprintf(out + off, len - off, "%s%016" PRIx64, i ? "," : "", v[i]);
}

void mgr_log_change(const pl_shard *old, const pl_shard *next, const char *why)
{
    char sec[8 * 18 + 1], lrn[8 * 18 + 1];
    fmt_ids(sec, sizeof(sec), next->cfg.secondaries, next->cfg.nsec);
    fmt_ids(lrn, sizeof(lrn), next->cfg.learners, next->cfg.nlearn);
    log_notice("shard %" PRIu32 ": version %" PRIu64 " -> %" PRIu64 ": primary %016" PRIx64
               " secondaries [%s] learners [%s] (%s)",
               next->cfg.shard, old ? old->cfg.version : 0, next->cfg.version, next->cfg.primary,
               sec, lrn, why);
}

/* ---- periodic work -------------------------------------------------------- */

static void repair(mgr_t *m)
{
    /* A swap replaces a row in place, so indexes stay valid; the view is
     * rebuilt for each shard so one spare is never given to two. */
    for (size_t i = 0; i < m->st.nshards && mgr_acting(m); i++) {
        pl_view v;
        mstate_view(&m->st, mgr_now(), &v);
        pl_shard cur = m->st.shards[i].s, next;
        int64_t mod = m->st.shards[i].mod_rev;
        char why[256];
        if (mgr_switchover_busy(m, cur.cfg.shard)) continue; /* its swap would fail */
        if (pl_repair(&v, &cur, &next, why, sizeof(why)) != PL_CHANGED) continue;
        if (mgr_shard_cas(m, &next, mod, NULL) == 1) mgr_log_change(&cur, &next, why);
    }
}

static void on_tick(uv_timer_t *t)
{
    mgr_t *m = t->data;
    if (m->stopping) return;
    elect_tick(&m->el);
    int64_t now = mgr_now();
    if (elect_active(&m->el, now) && m->loaded_term != m->el.term) {
        if (load_state(m) == 0) {
            m->loaded_term = m->el.term;
            m->next_repair = mgr_now() + MGR_REPAIR_MS;
        }
    }
    if (mgr_acting(m) && now >= m->next_repair) {
        repair(m);
        m->next_repair = mgr_now() + MGR_REPAIR_MS;
    }
}

/* ---- start and stop ------------------------------------------------------- */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

void mgr_stop(mgr_t *m)
{
    if (m->stopping) return;
    m->stopping = true;
    elect_resign(&m->el);
    uv_timer_stop(&m->tick);
    rserver_destroy(m->srv);
    m->srv = NULL;
    mgr_switchover_stop_all(m); /* their clients are gone with the server */
    uv_stop(m->loop);
    log_notice("cairn manager %s is now ready to exit, bye bye", m->id);
}

static void on_signal(uv_signal_t *s, int signum)
{
    mgr_t *m = s->data;
    log_notice("received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    mgr_stop(m);
}

static void random_id(char *out, size_t len)
{
    uint64_t r;
    if (getrandom(&r, sizeof(r), 0) != sizeof(r)) r = (uint64_t)clock_us() ^ (uint64_t)getpid();
    snprintf(out, len, "%016" PRIx64, r);
}

/* The manager's id: --id, else DIR/manager.id (created on first start),
 * else random for this run. */
static int resolve_id(mgr_t *m)
{
    if (m->cfg.id[0]) {
        snprintf(m->id, sizeof(m->id), "%s", m->cfg.id);
        return 0;
    }
    if (!m->cfg.dir[0]) {
        random_id(m->id, sizeof(m->id));
        return 0;
    }
    if (mkdir(m->cfg.dir, 0755) < 0 && errno != EEXIST) {
        log_error("cannot create %s: %s", m->cfg.dir, strerror(errno));
        return -errno;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/manager.id", m->cfg.dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char line[128] = "";
        if (fgets(line, sizeof(line), f)) line[strcspn(line, "\r\n")] = '\0';
        fclose(f);
        if (mgr_config_name_ok(line)) {
            snprintf(m->id, sizeof(m->id), "%s", line);
            return 0;
        }
        log_warn("%s does not hold a valid id; writing a new one", path);
    }
    random_id(m->id, sizeof(m->id));
    f = fopen(path, "w");
    if (!f || fprintf(f, "%s\n", m->id) < 0 || fclose(f) != 0) {
        log_error("cannot write %s: %s", path, strerror(errno));
        return -EIO;
    }
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: cairn manager [--etcd URL[,URL..]] [--cluster NAME] [--port 7100]\n"
            "                     [--bind 127.0.0.1] [--id ID] [--lease-ttl 2] [--dir DIR]\n"
            "                     [--etcd-timeout 500] [--switchover-timeout 2000]\n"
            "                     [--loglevel notice] [--logfile F] [--config FILE]\n"
            "Managers of one cluster elect one active manager through an etcd lease; the\n"
            "others stand by and answer -NOTACTIVE with the active one's address.\n");
}

int manager_main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
    mgr_t *m = cairn_calloc(1, sizeof(*m));
    char err[1024];
    int code = 1;
    if (mgr_config_load(&m->cfg, argc, argv, 2, err, sizeof(err)) < 0) {
        fprintf(stderr, "cairn manager: %s\n", err);
        cairn_free(m);
        return 1;
    }
    log_set_role("manager");
    log_set_level((enum log_level)m->cfg.loglevel);
    if (m->cfg.logfile[0] && log_set_file(m->cfg.logfile) < 0)
        fprintf(stderr, "cairn manager: cannot open logfile %s; logging to stderr\n",
                m->cfg.logfile);
    signal(SIGPIPE, SIG_IGN);
    if (resolve_id(m) < 0) goto out_cfg;
    snprintf(m->addr, sizeof(m->addr), "%s:%lld", m->cfg.bind, (long long)m->cfg.port);
    snprintf(m->prefix, sizeof(m->prefix), "/cairn/%s/", m->cfg.cluster);
    snprintf(m->leader_key, sizeof(m->leader_key), "%smanager/leader", m->prefix);
    json_t *lv = json_pack("{s:s, s:s}", "id", m->id, "addr", m->addr);
    char *lvs = json_dumps(lv, JSON_COMPACT | JSON_PRESERVE_ORDER);
    snprintf(m->leader_val, sizeof(m->leader_val), "%s", lvs);
    free(lvs);
    json_decref(lv);

    m->etcd = etcd_create(m->cfg.etcd, (long)m->cfg.etcd_timeout);
    if (!m->etcd) {
        fprintf(stderr, "cairn manager: bad --etcd endpoint list '%s'\n", m->cfg.etcd);
        goto out_cfg;
    }
    mstate_init(&m->st);
    gwrep_init(&m->gws);
    elect_io io = {m, io_now, io_grant, io_keepalive, io_campaign, io_revoke};
    elect_params ep = {.ttl_s = m->cfg.lease_ttl};
    elect_init(&m->el, &io, &ep);

    m->loop = uv_default_loop();
    m->start_ms = clock_ms();
    resp_limits lim = {1024 * 1024, 1024, 64 * 1024};
    m->srv = rserver_create(m->loop, &lim, mgr_handle, m);
    int rc = rserver_listen(m->srv, m->cfg.bind, (int)m->cfg.port);
    if (rc < 0) {
        log_error("cannot listen on %s: %s", m->addr, uv_strerror(rc));
        rserver_destroy(m->srv);
        goto out_loop;
    }
    uv_timer_init(m->loop, &m->tick);
    m->tick.data = m;
    uv_timer_start(&m->tick, on_tick, 0, MGR_TICK_MS);
    uv_signal_init(m->loop, &m->sigterm);
    uv_signal_init(m->loop, &m->sigint);
    m->sigterm.data = m->sigint.data = m;
    uv_signal_start(&m->sigterm, on_signal, SIGTERM);
    uv_signal_start(&m->sigint, on_signal, SIGINT);
    log_notice("cairn manager %s ready on %s: cluster '%s', etcd %s, lease %llds, pid %d", m->id,
               m->addr, m->cfg.cluster, m->cfg.etcd, (long long)m->cfg.lease_ttl, (int)getpid());
    uv_run(m->loop, UV_RUN_DEFAULT);
    code = 0;

out_loop:
    uv_walk(m->loop, close_walk, NULL);
    uv_run(m->loop, UV_RUN_DEFAULT);
    uv_loop_close(m->loop);
    gwrep_close(&m->gws);
    mstate_close(&m->st);
    etcd_destroy(m->etcd);
out_cfg:
    mgr_config_free(&m->cfg);
    cairn_free(m);
    return code;
}
