/*
 * ctl.c — `cairn ctl` (see ctl.h for the commands).
 *
 * One request, one reply, on a private libuv loop:
 *
 *   try(addr) -> rconn_send -> on_reply
 *     no reply (down)        -> try the next address of --manager, unless the
 *                               request may have reached it and is not safe
 *                               to repeat (switchover, shard create): then
 *                               its outcome is unknown, and ctl says so
 *     -NOTACTIVE host:port   -> try host:port (once), else the next address
 *     -TRYAGAIN              -> the same address again after 300 ms (a few times)
 *     anything else          -> done: print it
 */
#include "ctl/ctl.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "ctl/ctl_fmt.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/resp.h"
#include "lib/util.h"
#include "net/rconn.h"

#define CTL_MAX_ADDRS 16
#define CTL_MAX_TRIES 32
#define CTL_TRYAGAIN_MAX 20

typedef struct ctl_call {
    uv_loop_t loop;
    uv_timer_t retry;
    char *addrs[CTL_MAX_ADDRS]; /* --manager list */
    size_t naddrs, next;
    char tried[CTL_MAX_TRIES][256];
    size_t ntried;
    int tryagain;
    char cur[256];
    size_t argc;
    const char *argv[8];
    bool once;                /* not safe to send twice */
    int64_t reply_timeout_ms; /* the manager may take this long to answer */
    rconn_t *conn;
    resp_value *reply; /* the final reply, or NULL */
    char err[1024];    /* why there is none */
} ctl_call;

static void try_addr(ctl_call *c, const char *addr);

static bool was_tried(ctl_call *c, const char *addr)
{
    for (size_t i = 0; i < c->ntried; i++)
        if (strcmp(c->tried[i], addr) == 0) return true;
    return false;
}

/* Move on to the next untried address of the list, or give up. */
static void try_next(ctl_call *c)
{
    while (c->next < c->naddrs) {
        const char *a = c->addrs[c->next++];
        if (!was_tried(c, a)) {
            try_addr(c, a);
            return;
        }
    }
    if (!c->err[0]) snprintf(c->err, sizeof(c->err), "no manager answered");
}

static void on_retry(uv_timer_t *t)
{
    ctl_call *c = t->data;
    char addr[256];
    snprintf(addr, sizeof(addr), "%s", c->cur);
    c->ntried--; /* the same address again */
    try_addr(c, addr);
}

static void on_reply(void *arg, const char *reply, size_t len)
{
    ctl_call *c = arg;
    rconn_destroy(c->conn);
    c->conn = NULL;
    if (!reply && c->once && len == RCONN_MAYBE_SENT) {
        snprintf(c->err, sizeof(c->err),
                 "lost manager %s after sending the request: whether it was carried out is "
                 "unknown (see cairn ctl status)",
                 c->cur);
        return;
    }
    if (!reply) {
        snprintf(c->err, sizeof(c->err), "cannot reach a manager at %s", c->cur);
        try_next(c);
        return;
    }
    resp_value *v = NULL;
    size_t used;
    if (resp_read_value(reply, len, &v, &used) < 0) {
        snprintf(c->err, sizeof(c->err), "malformed reply from %s", c->cur);
        try_next(c);
        return;
    }
    if (v->type == RESP_ERROR && strncmp(v->s, "NOTACTIVE", 9) == 0) {
        const char *hint = v->s[9] == ' ' ? v->s + 10 : "-";
        snprintf(c->err, sizeof(c->err), "manager %s is not active (active: %s)", c->cur, hint);
        char h[256];
        snprintf(h, sizeof(h), "%s", hint);
        resp_value_free(v);
        if (strcmp(h, "-") != 0 && !was_tried(c, h)) try_addr(c, h);
        else try_next(c);
        return;
    }
    if (v->type == RESP_ERROR && strncmp(v->s, "TRYAGAIN", 8) == 0 &&
        c->tryagain++ < CTL_TRYAGAIN_MAX) {
        resp_value_free(v);
        uv_timer_start(&c->retry, on_retry, 300, 0);
        return;
    }
    c->reply = v;
}

static void try_addr(ctl_call *c, const char *addr)
{
    if (c->ntried == CTL_MAX_TRIES) {
        snprintf(c->err, sizeof(c->err), "gave up after %d attempts", CTL_MAX_TRIES);
        return;
    }
    snprintf(c->tried[c->ntried++], sizeof(c->tried[0]), "%s", addr);
    snprintf(c->cur, sizeof(c->cur), "%s", addr);
    rconn_opts o = {.connect_timeout_ms = 1000, .reply_timeout_ms = c->reply_timeout_ms};
    c->conn = rconn_create(&c->loop, addr, &o);
    if (!c->conn) {
        snprintf(c->err, sizeof(c->err), "bad manager address '%s' (want host:port)", addr);
        try_next(c);
        return;
    }
    if (rconn_send(c->conn, c->argc, c->argv, NULL, on_reply, c) < 0) {
        rconn_destroy(c->conn);
        c->conn = NULL;
        try_next(c);
    }
}

/* Send argv to the active manager; returns its reply (caller frees) or
 * NULL with the reason in err.  `once`: the request changes something and
 * must not be sent again once it may have arrived. */
static resp_value *call(char *managers, size_t argc, const char **argv, bool once,
                        int64_t reply_timeout_ms, char *err, size_t errlen)
{
    ctl_call *c = cairn_calloc(1, sizeof(*c));
    c->once = once;
    c->reply_timeout_ms = reply_timeout_ms;
    for (char *save = NULL, *a = strtok_r(managers, ",", &save); a && c->naddrs < CTL_MAX_ADDRS;
         a = strtok_r(NULL, ",", &save))
        if (*a) c->addrs[c->naddrs++] = a;
    c->argc = argc;
    for (size_t i = 0; i < argc; i++) c->argv[i] = argv[i];
    uv_loop_init(&c->loop);
    uv_timer_init(&c->loop, &c->retry);
    c->retry.data = c;
    if (c->naddrs == 0) snprintf(c->err, sizeof(c->err), "no manager address given");
    else try_next(c);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&c->retry, NULL);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    uv_loop_close(&c->loop);
    resp_value *v = c->reply;
    if (!v) snprintf(err, errlen, "%s", c->err);
    cairn_free(c);
    return v;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: cairn ctl [--manager HOST:PORT[,HOST:PORT..]] COMMAND\n"
            "  status [--json]             active manager, shards with LSN / commit / lag, nodes,\n"
            "                              and each gateway's per-node requests and latencies\n"
            "  topology                    the TOPOLOGY JSON that gateways read\n"
            "  shard create --replicas N   create a shard on N spare nodes\n"
            "  switchover SHARD [NODE]     move the primary role to NODE (id or host:port),\n"
            "                              or to the most caught-up secondary; the primary\n"
            "                              drains first, so no write fails or is lost\n"
            "  node weight NODE W          set a node's weight\n"
            "--manager defaults to 127.0.0.1:7100; every address is tried until one is active.\n");
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("cairn ctl: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int ctl_main(int argc, char **argv)
{
    char managers[4096] = "127.0.0.1:7100";
    const char *words[16];
    size_t nw = 0;
    bool json = false;
    const char *replicas = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(a, "--manager") == 0 || strcmp(a, "--managers") == 0) {
            if (++i >= argc) return fail("--manager: missing value");
            snprintf(managers, sizeof(managers), "%s", argv[i]);
        } else if (strncmp(a, "--manager=", 10) == 0) {
            snprintf(managers, sizeof(managers), "%s", a + 10);
        } else if (strcmp(a, "--json") == 0) {
            json = true;
        } else if (strcmp(a, "--replicas") == 0) {
            if (++i >= argc) return fail("--replicas: missing value");
            replicas = argv[i];
        } else if (strncmp(a, "--replicas=", 11) == 0) {
            replicas = a + 11;
        } else if (strncmp(a, "--", 2) == 0) {
            return fail("unknown option '%s' (try --help)", a);
        } else if (nw < sizeof(words) / sizeof(words[0])) {
            words[nw++] = a;
        }
    }
    log_set_level(LOG_ERROR); /* rconn's connection notes are not for operators */
    if (nw == 0) {
        usage(stderr);
        return 1;
    }

    const char *req[8];
    size_t nreq = 0;
    enum { OUT_STATUS, OUT_RAW, OUT_CONFIG, OUT_OK } kind;
    const char *title = "";
    bool once = false;
    int64_t wait_ms = 10000;
    req[nreq++] = "CAIRN";
    if (strcmp(words[0], "status") == 0 && nw == 1) {
        req[nreq++] = "STATUS";
        kind = json ? OUT_RAW : OUT_STATUS;
    } else if (strcmp(words[0], "topology") == 0 && nw == 1) {
        req[nreq++] = "TOPOLOGY";
        kind = OUT_RAW;
    } else if (strcmp(words[0], "shard") == 0 && nw == 2 && strcmp(words[1], "create") == 0) {
        if (!replicas) return fail("shard create: --replicas N is required");
        req[nreq++] = "SHARD-CREATE";
        req[nreq++] = replicas;
        once = true;
        kind = json ? OUT_RAW : OUT_CONFIG;
        title = "created";
    } else if (strcmp(words[0], "switchover") == 0 && (nw == 2 || nw == 3)) {
        req[nreq++] = "SWITCHOVER";
        req[nreq++] = words[1];
        if (nw == 3) req[nreq++] = words[2];
        once = true;
        wait_ms = 70000; /* a drain (--switchover-timeout, up to 60 s) and its confirmation */
        kind = json ? OUT_RAW : OUT_CONFIG;
        title = "switched over";
    } else if (strcmp(words[0], "node") == 0 && nw == 4 && strcmp(words[1], "weight") == 0) {
        req[nreq++] = "NODE-WEIGHT";
        req[nreq++] = words[2];
        req[nreq++] = words[3];
        kind = OUT_OK;
    } else {
        usage(stderr);
        return 1;
    }

    char err[1024];
    resp_value *v = call(managers, nreq, req, once, wait_ms, err, sizeof(err));
    if (!v) return fail("%s", err);
    int code = 0;
    if (v->type == RESP_ERROR) {
        code = fail("%s", v->s);
    } else if (kind == OUT_OK) {
        printf("%s\n", v->type == RESP_STRING ? v->s : "OK");
    } else if (v->type != RESP_BULK) {
        code = fail("unexpected %s reply", resp_type_name(v->type));
    } else if (kind == OUT_RAW) {
        printf("%s\n", v->s);
    } else {
        cairn_buf b;
        buf_init(&b);
        int rc = kind == OUT_STATUS ? ctl_fmt_status(v->s, v->len, &b)
                                    : ctl_fmt_config(v->s, v->len, title, &b);
        if (rc < 0) code = fail("the manager's reply is not the JSON expected: %s", v->s);
        else fwrite(b.data, 1, b.len, stdout);
        buf_close(&b);
    }
    resp_value_free(v);
    return code;
}
