/*
 * node.c — `cairn node`: start-up, the loop's periodic work, shutdown.
 *
 *   node_main: config -> data dir recovery (persist_open) -> listen -> loop
 *   before_sleep (uv_prepare, once per loop turn): log write / fsync hand-off,
 *       then replies released up to the commit index and written
 *   cron (uv_timer, hz): active expiry, idle rehashing, client timeouts,
 *       everysec fsync, size-triggered snapshots
 *   SIGTERM / SIGINT: stop accepting, flush and sync the log, exit 0
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "node/db.h"
#include "node/persist.h"
#include "node/replica.h"
#include "node/watch.h"

static uint64_t rnd_state;

uint64_t node_rand64(void)
{
    /* xorshift64*: fast, good enough for sampling keys */
    uint64_t x = rnd_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rnd_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void node_durable(node_t *n, uint64_t lsn)
{
    if (lsn <= n->durable_lsn) return;
    n->durable_lsn = lsn;
    if (n->replica) replica_durable(n, lsn); /* commit comes back via the replica */
    else n->commit_lsn = lsn;
}

void node_snapshot_done(node_t *n, bool ok, uint64_t lsn)
{
    if (n->replica) replica_snapshot_done(n, ok, lsn);
}

bool node_writable(node_t *n) { return !n->replica || replica_serving(n); }

static void before_sleep(uv_prepare_t *h)
{
    node_t *n = h->data;
    replica_before_sleep(n); /* first: repl must know an entry before it is durable */
    persist_before_sleep(n);
    replica_flush_links(n);  /* APPENDs and ACKs of this turn leave now */
    client_flush_all(n);
}

static void cron(uv_timer_t *t)
{
    node_t *n = t->data;
    int64_t period_us = 1000000 / n->cfg.hz;
    db_active_expire(n, period_us / 4);
    /* Idle-time rehashing: up to about a millisecond. */
    int64_t start = clock_us();
    while (ks_rehash_step(n->ks, 100) && clock_us() - start < 1000) {
    }
    if (n->cfg.timeout > 0) {
        int64_t now = clock_ms();
        for (client_t *c = n->clients, *next; c; c = next) {
            next = c->next;
            if (!(c->flags & CLIENT_BLOCKED) && now - c->last_ms > n->cfg.timeout * 1000 &&
                client_out_pending(c) == 0) {
                log_info("closing idle client id=%llu addr=%s (timeout %llds)",
                         (unsigned long long)c->id, c->addr, (long long)n->cfg.timeout);
                client_close(c);
            }
        }
    }
    persist_cron(n);
}

static void on_signal(uv_signal_t *s, int signum)
{
    node_t *n = s->data;
    if (signum == SIGCHLD) {
        persist_child_exited(n);
        return;
    }
    log_notice("received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    node_shutdown(n, false, true);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->type == UV_TCP && h->data && h->data != arg) {
        /* a client: client_close does the bookkeeping */
        client_t *c = h->data;
        if (c->tcp.data == c && (uv_handle_t *)&c->tcp == h) {
            client_close(c);
            return;
        }
    }
    uv_close(h, NULL);
}

int node_shutdown(node_t *n, bool save, bool nosave)
{
    (void)nosave;
    if (n->shutting_down) return 0;
    replica_before_sleep(n);
    /* Flush the log (and snapshot if asked) before anything stops, so a
     * failed snapshot leaves a running server. */
    int rc = persist_close(n, save);
    if (rc < 0 && save) return rc;
    n->shutting_down = true;
    /* Everything is committed now: give clients their last replies. */
    client_flush_all(n);
    uv_stop(n->loop);
    log_notice("cairn node is now ready to exit, bye bye");
    return 0;
}

static void raise_fd_limit(node_t *n)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rlim_t want = (rlim_t)n->cfg.maxclients + 64;
    if (rl.rlim_cur >= want) return;
    rl.rlim_cur = want < rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        log_warn("open files limit is %llu: at most about %llu clients can connect",
                 (unsigned long long)rl.rlim_cur, (unsigned long long)(rl.rlim_cur - 64));
}

static void usage(void)
{
    fprintf(stderr,
            "usage: cairn node [--config FILE] [--port N] [--bind ADDR] [--dir DIR]\n"
            "                  [--fsync always|everysec|no] [--SETTING VALUE ...]\n"
            "Every setting of the config file can be given as a flag; flags win.  Settings:\n");
    cfg_print_help(node_config_table, stderr);
}

int node_main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        }
    node_t *n = cairn_calloc(1, sizeof(*n));
    char err[1024];
    if (node_config_load(&n->cfg, argc, argv, 2, err, sizeof(err)) < 0) {
        fprintf(stderr, "cairn node: %s\n", err);
        cairn_free(n);
        return 1;
    }
    log_set_role("node");
    log_set_level((enum log_level)n->cfg.loglevel);
    if (n->cfg.logfile && n->cfg.logfile[0] && log_set_file(n->cfg.logfile) < 0)
        fprintf(stderr, "cairn node: cannot open logfile %s; logging to stderr\n", n->cfg.logfile);

    if (getrandom(&rnd_state, sizeof(rnd_state), 0) != sizeof(rnd_state) || rnd_state == 0)
        rnd_state = (uint64_t)clock_us() | 1;
    for (int i = 0; i < 40; i++) n->run_id[i] = "0123456789abcdef"[node_rand64() % 16];
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(n);
    n->start_ms = clock_ms();
    n->loop = uv_default_loop();
    n->ks = ks_create();
    n->readbuf_size = 64 * 1024;
    n->readbuf = cairn_malloc(n->readbuf_size);

    client_t *replay = cairn_calloc(1, sizeof(*replay));
    replay->node = n;
    replay->flags = CLIENT_REPLAY | CLIENT_AUTHED;
    replay->proto = 2;
    buf_init(&replay->out);
    n->replay = replay;

    int rc = persist_open(n);
    if (rc == 0) rc = client_listen(n);
    if (rc == 0 && n->cfg.manager && n->cfg.manager[0]) rc = replica_start(n);
    if (rc < 0) {
        n->exit_code = 1;
        goto out;
    }
    uv_prepare_init(n->loop, &n->before_sleep);
    n->before_sleep.data = n;
    uv_prepare_start(&n->before_sleep, before_sleep);
    uv_timer_init(n->loop, &n->cron);
    n->cron.data = n;
    uv_timer_start(&n->cron, cron, (uint64_t)(1000 / n->cfg.hz), (uint64_t)(1000 / n->cfg.hz));
    uv_signal_init(n->loop, &n->sigterm);
    uv_signal_init(n->loop, &n->sigint);
    uv_signal_init(n->loop, &n->sigchld);
    n->sigterm.data = n->sigint.data = n->sigchld.data = n;
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sigchld, on_signal, SIGCHLD);

    log_notice("cairn node ready: %s:%lld, data dir %s, fsync %s, pid %d", n->cfg.bind,
               (long long)n->cfg.port, n->cfg.dir,
               n->cfg.fsync == FSYNC_ALWAYS ? "always" : n->cfg.fsync == FSYNC_EVERYSEC ? "everysec" : "no",
               (int)getpid());
    uv_run(n->loop, UV_RUN_DEFAULT);
    if (!n->shutting_down) persist_close(n, false);

out:
    replica_stop(n);
    uv_walk(n->loop, close_walk, NULL);
    uv_run(n->loop, UV_RUN_DEFAULT);
    uv_loop_close(n->loop);
    persist_destroy(n);
    watch_destroy(n);
    buf_close(&replay->out);
    cairn_free(replay);
    ks_destroy(n->ks);
    cairn_free(n->readbuf);
    int code = n->exit_code;
    node_config_free(&n->cfg);
    cairn_free(n);
    return code;
}
