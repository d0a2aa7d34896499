/*
 * gateway.c — `cairn gateway`: start-up, timers, shutdown (see gw.h for
 * the request flow).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gateway/gw.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"

#define TICK_MS 10

static void on_tick(uv_timer_t *t)
{
    gw_t *g = t->data;
    gw_retry_tick(g);
    static int n;
    if (++n % 10 == 0) gw_health_tick(g);
}

static void clock_stale(uv_prepare_t *p) { ((gw_t *)p->data)->now_us = 0; }
static void clock_stale_check(uv_check_t *c) { ((gw_t *)c->data)->now_us = 0; }

static void on_signal(uv_signal_t *s, int signum)
{
    gw_t *g = s->data;
    log_notice("received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    g->stopping = true;
    uv_stop(g->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) uv_close(h, NULL);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: cairn gateway [--port 6380] [--bind 127.0.0.1] [--manager HOST:PORT[,...]]\n"
            "                     [--read-policy primary|replica|prefer-replica|any]\n"
            "                     [--policy random|round-robin|weighted-round-robin|least-outstanding|p2c|ewma]\n"
            "                     [--read-your-writes yes|no] [--backend-conns 2] [--timeout-ms 5000]\n"
            "                     [--retry-ms 3000] [--maxclients 10000] [--slow-start-ms 5000]\n"
            "                     [--requirepass PASSWORD] [--loglevel LEVEL] [--logfile FILE] [--config FILE]\n");
}

int gateway_main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
    gw_t *g = cairn_calloc(1, sizeof(*g));
    char err[1024];
    if (gw_config_load(&g->cfg, argc, argv, 2, err, sizeof(err)) < 0) {
        fprintf(stderr, "cairn gateway: %s\n", err);
        cairn_free(g);
        return 1;
    }
    log_set_role("gateway");
    log_set_level((enum log_level)g->cfg.loglevel);
    if (g->cfg.logfile[0]) log_set_file(g->cfg.logfile);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    static const char *names[] = {"random", "round-robin", "weighted-round-robin", "least-outstanding",
                                  "p2c", "ewma"};
    g->policy = policy_find(names[g->cfg.policy]);
    g->read_policy = g->cfg.read_policy;
    g->start_ms = clock_ms();
    g->loop = uv_default_loop();
    int rc = gw_listen(g);
    if (rc < 0) {
        log_error("cannot listen on %s:%lld: %s", g->cfg.bind, (long long)g->cfg.port, uv_strerror(rc));
        gw_config_free(&g->cfg);
        cairn_free(g);
        return 1;
    }
    /* the turn's cached clock goes stale around each poll */
    uv_prepare_init(g->loop, &g->clock_prep);
    uv_check_init(g->loop, &g->clock_check);
    g->clock_prep.data = g->clock_check.data = g;
    uv_prepare_start(&g->clock_prep, clock_stale);
    uv_check_start(&g->clock_check, clock_stale_check);
    uv_unref((uv_handle_t *)&g->clock_prep);
    uv_unref((uv_handle_t *)&g->clock_check);
    gw_topology_start(g);
    gw_report *report = gw_report_start(g);
    uv_timer_init(g->loop, &g->tick);
    g->tick.data = g;
    uv_timer_start(&g->tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(g->loop, &g->sigterm);
    uv_signal_init(g->loop, &g->sigint);
    g->sigterm.data = g->sigint.data = g;
    uv_signal_start(&g->sigterm, on_signal, SIGTERM);
    uv_signal_start(&g->sigint, on_signal, SIGINT);
    log_notice("cairn gateway ready on %s:%lld, manager %s, read policy %s, scheduling %s",
               g->cfg.bind, (long long)g->cfg.port, g->cfg.manager,
               (const char *[]){"primary", "replica", "prefer-replica", "any"}[g->read_policy], g->policy->name);
    uv_run(g->loop, UV_RUN_DEFAULT);

    g->stopping = true;
    gw_report_stop(report);
    gw_clients_close(g);
    gw_topology_free(g);
    gw_retry_drop_all(g); /* their clients are gone */
    gw_pools_free(g);
    uv_walk(g->loop, close_walk, NULL);
    uv_run(g->loop, UV_RUN_DEFAULT);
    uv_loop_close(g->loop);
    gw_config_free(&g->cfg);
    cairn_free(g);
    log_notice("cairn gateway exiting");
    return 0;
}
