/*
 * gw_tx.c — MULTI / EXEC / DISCARD / WATCH / UNWATCH through the gateway.
 *
 * A transaction runs on one shard: every key it names (and every key the
 * client WATCHes) must live in that shard, else the command that crosses
 * answers -CROSSSHARD and EXEC aborts (atomic multi-shard transactions come
 * with two-phase commit).
 *
 * MULTI.  The gateway queues the commands itself (answering +QUEUED, or an
 * error that makes EXEC answer -EXECABORT, as Redis does) and at EXEC sends
 * MULTI, the commands and EXEC as one block on the client's connection to
 * the shard's primary: the block is appended contiguously, so no other
 * client's request lands inside it, and its reply frames come back as one
 * span (rconn_send_raw_n).  A block the node refused before executing any
 * of it (NOTPRIMARY, TRYAGAIN, CLUSTERDOWN during a failover) is retried
 * like a single write; one whose connection broke after it was sent gets
 * the "may or may not have been applied" error.
 *
 * WATCH.  Watches are per connection on the node, and the gateway's node
 * connections are shared, so a watching client gets a connection of its own
 * to the primary, opened at its first WATCH and closed at EXEC, DISCARD,
 * UNWATCH or when the client leaves.  WATCH and EXEC-under-WATCH wait until
 * the client's earlier requests have answered (gw_tx_needs_drain), which
 * keeps the client's order across the two connections.  If that connection
 * drops, or the primary changes, the watch is void and EXEC answers a null
 * array: "a watched key may have changed", which optimistic-locking clients
 * already handle by retrying.
 *
 * Protocol.  The watch connection speaks the client's protocol (it opens
 * with HELLO 3 for a RESP3 client); if the client switched since its first
 * WATCH, EXEC's block starts with HELLO <its protocol>, which keeps the
 * node's watches.  The null array is *-1 in RESP2, _ in RESP3.
 */
#include <string.h>

#include "gateway/gw_client.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/resp.h"

#define TX_MAX_BYTES (64u << 20) /* queued requests per transaction */

static const char MULTI_REQ[] = "*1\r\n$5\r\nMULTI\r\n";
static const char EXEC_REQ[] = "*1\r\n$4\r\nEXEC\r\n";

typedef struct gw_tx {
    gw_client *c;
    bool multi;        /* between MULTI and EXEC / DISCARD */
    bool dirty;        /* a command was refused while queueing: EXEC aborts */
    bool write;        /* some queued command writes */
    bool has_shard;
    uint32_t shard;    /* the shard of the queued commands' keys */
    cairn_buf block;   /* MULTI + queued requests */
    size_t nqueued;
    /* WATCH */
    rconn_t *wconn;    /* this client's own connection to the primary */
    int wproto;        /* the protocol wconn speaks */
    uint32_t wshard;
    bool watching, wbroken;
} gw_tx;

static gw_tx *tx_get(gw_client *c)
{
    if (!c->tx) {
        c->tx = cairn_calloc(1, sizeof(*c->tx));
        c->tx->c = c;
        buf_init(&c->tx->block);
    }
    return c->tx;
}

static void unwatch(gw_tx *t)
{
    if (t->wconn) rconn_destroy(t->wconn); /* pending callbacks run with NULL */
    t->wconn = NULL;
    t->watching = t->wbroken = false;
}

static void multi_reset(gw_tx *t)
{
    t->multi = t->dirty = t->write = t->has_shard = false;
    t->nqueued = 0;
    buf_reset(&t->block, 4096);
}

void gw_tx_free(gw_client *c)
{
    gw_tx *t = c->tx;
    if (!t) return;
    unwatch(t);
    buf_close(&t->block);
    cairn_free(t);
    c->tx = NULL;
}

static bool is_cmd(const resp_arg *a, const char *name) { return arg_eq(a, name); }

bool gw_tx_needs_drain(const gw_client *c, size_t argc, const resp_arg *argv)
{
    (void)argc;
    if (is_cmd(&argv[0], "watch")) return !(c->tx && c->tx->multi);
    return is_cmd(&argv[0], "exec") && c->tx && c->tx->multi && c->tx->watching;
}

/* The shard every key of the request lives in: *sh, or false when the keys
 * span shards (or the command spans them all).  Keyless commands leave *sh
 * NULL. */
static bool one_shard(gw_client *c, const cmd_def *d, size_t argc, const resp_arg *argv, gw_shard **sh)
{
    gw_t *g = c->g;
    *sh = NULL;
    static const char *fan_out[] = {"dbsize", "keys", "flushall", "flushdb", "scan", "randomkey"};
    for (size_t i = 0; i < sizeof(fan_out) / sizeof(*fan_out); i++)
        if (strcmp(d->name, fan_out[i]) == 0) {
            if (g->nshards > 1) return false;
            *sh = g->nshards ? &g->shards[0] : NULL;
            return true;
        }
    if (d->first <= 0) return true;
    size_t last = d->last < 0 ? argc + (size_t)(long)d->last : (size_t)d->last;
    for (size_t i = (size_t)d->first; i <= last && i < argc; i += (size_t)d->step) {
        gw_shard *k = gw_shard_for_key(g, argv[i].p, argv[i].len);
        if (*sh && k != *sh) return false;
        *sh = k;
    }
    return true;
}

/* Gateway-local commands cannot run inside a transaction on a node; the
 * ones a node answers the same way are queued like any other. */
static bool local_only(const cmd_def *d)
{
    static const char *names[] = {"hello", "client", "info", "config", "cairn", "save",
                                  "bgsave", "shutdown", "lastsave", "auth"};
    for (size_t i = 0; i < sizeof(names) / sizeof(*names); i++)
        if (strcmp(d->name, names[i]) == 0) return true;
    return false;
}

static void queue_cmd(gw_client *c, gw_tx *t, size_t argc, const resp_arg *argv, const char *raw,
                      size_t rawlen)
{
    const cmd_def *d = cmd_lookup(argv[0].p, argv[0].len);
    if (!d) {
        t->dirty = true;
        gwc_reply_unknown(c, argc, argv);
        return;
    }
    if ((d->arity > 0 && (int64_t)argc != d->arity) || (int64_t)argc < -(int64_t)d->arity) {
        t->dirty = true;
        gwc_local_error(c, "ERR wrong number of arguments for '%s' command", d->name);
        return;
    }
    if (local_only(d)) {
        t->dirty = true;
        gwc_local_error(c, "ERR cairn gateway: %s cannot be used inside MULTI", d->name);
        return;
    }
    gw_shard *sh;
    if (!one_shard(c, d, argc, argv, &sh) || (sh && t->has_shard && sh->id != t->shard) ||
        (sh && t->watching && sh->id != t->wshard)) {
        t->dirty = true;
        c->g->cross_shard++;
        gwc_local_error(c, "CROSSSHARD a transaction must keep to one shard; %s names keys of "
                           "another shard (use {hash tags} to keep them together)", d->name);
        return;
    }
    if (t->block.len + rawlen > TX_MAX_BYTES) {
        t->dirty = true;
        gwc_local_error(c, "ERR cairn gateway: transaction larger than %u MB", TX_MAX_BYTES >> 20);
        return;
    }
    if (sh) {
        t->has_shard = true;
        t->shard = sh->id;
    }
    if (d->flags & CMD_WRITE) t->write = true;
    if (rawlen && raw[0] == '*') buf_append(&t->block, raw, rawlen);
    else gwc_encode(&t->block, argc, argv);
    t->nqueued++;
    static const char queued[] = "+QUEUED\r\n";
    gwc_local_raw(c, queued, sizeof(queued) - 1);
}

void gw_tx_block_reply(const char *span, size_t len, size_t nframes, const char **exec_frame,
                       size_t *exec_len, bool *refused)
{
    size_t off = 0, flen = 0;
    *refused = false;
    for (size_t i = 0; i < nframes && off < len; i++) {
        if (resp_scan_reply(span + off, len - off, RESP_DEPTH_MAX, &flen) != 0) break;
        if (gwc_refused_before_execution(span + off, flen)) *refused = true;
        *exec_frame = span + off;
        *exec_len = flen;
        off += flen;
    }
}

/* ---- WATCH: the client's own connection ---- */

typedef struct wreq {
    gw_client *c;
    gw_slot *slot;
    rconn_t *owned;       /* EXEC: the connection, closed once the reply is in */
    rconn_t *owned_watch; /* WATCH: the connection it was sent on */
    size_t nframes;
} wreq;

static void slot_null_array(gw_slot *s)
{
    cairn_buf b;
    buf_init(&b);
    reply_null_array(&b, s->proto);
    gwc_slot_reply(s, b.data, b.len);
    buf_close(&b);
}

static void wconn_reply(void *arg, const char *frame, size_t len)
{
    wreq *w = arg;
    gw_slot *s = w->slot;
    gw_client *c = w->c;
    if (w->owned) { /* EXEC */
        rconn_t *conn = w->owned;
        if (!frame && len != RCONN_UNSENT) {
            c->g->failed_unknown++;
            static const char e[] = "-ERR cairn: the connection to the primary broke after EXEC was "
                                    "sent; the transaction may or may not have been applied\r\n";
            gwc_slot_reply(s, e, sizeof(e) - 1);
        } else if (!frame) {
            slot_null_array(s); /* never sent: aborted, as if a watched key changed */
        } else {
            bool refused;
            gw_tx_block_reply(frame, len, w->nframes, &frame, &len, &refused);
            /* Refused before running (the primary moved): the watch is void. */
            if (refused) slot_null_array(s);
            else gwc_slot_reply(s, frame, len);
        }
        cairn_free(w);
        rconn_destroy(conn); /* allowed from its own callback */
        return;
    }
    /* WATCH.  A failed watch voids the transaction (EXEC answers nil). */
    if (!frame || (len && frame[0] == '-')) {
        if (c->tx && c->tx->wconn == w->owned_watch) c->tx->wbroken = true;
    }
    if (!frame) {
        static const char e[] = "-TRYAGAIN cairn: lost the connection to the shard's primary while "
                                "setting up WATCH\r\n";
        gwc_slot_reply(s, e, sizeof(e) - 1);
    } else {
        gwc_slot_reply(s, frame, len);
    }
    cairn_free(w);
}

static void wconn_send(gw_client *c, rconn_t *conn, const char *bytes, size_t len, size_t nframes,
                       bool exec)
{
    gw_slot *s = gwc_slot_new(c);
    s->pending = 1;
    wreq *w = cairn_malloc(sizeof(*w));
    *w = (wreq){c, s, exec ? conn : NULL, conn, nframes};
    if (rconn_send_raw_n(conn, bytes, len, nframes, wconn_reply, w) < 0) wconn_reply(w, NULL, RCONN_UNSENT);
}

static void do_watch(gw_client *c, gw_tx *t, size_t argc, const resp_arg *argv, const char *raw,
                     size_t rawlen)
{
    gw_t *g = c->g;
    gw_shard *sh = NULL;
    for (size_t i = 1; i < argc; i++) {
        gw_shard *k = gw_shard_for_key(g, argv[i].p, argv[i].len);
        if (!k || (sh && k != sh) || (t->watching && k->id != t->wshard)) {
            if (!k) gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
            else {
                g->cross_shard++;
                gwc_local_error(c, "CROSSSHARD watched keys must live in one shard (use {hash tags} "
                                   "to keep them together)");
            }
            return;
        }
        sh = k;
    }
    if (!t->watching) {
        gw_node *p = gw_node_by_id(g, sh->primary);
        if (!p) {
            gwc_local_error(c, "TRYAGAIN cairn: shard %u has no primary right now", sh->id);
            return;
        }
        rconn_opts o = {.connect_timeout_ms = 500, .reply_timeout_ms = g->cfg.timeout_ms};
        o.hello = gw_node_hello(false, c->proto, &o.hello_len, &o.hello_frames);
        t->wconn = rconn_create(g->loop, p->addr, &o);
        t->wproto = c->proto;
        if (!t->wconn) {
            gwc_local_error(c, "ERR cairn: bad node address %s", p->addr);
            return;
        }
        t->watching = true;
        t->wbroken = false;
        t->wshard = sh->id;
    }
    cairn_buf enc;
    buf_init(&enc);
    if (!rawlen || raw[0] != '*') {
        gwc_encode(&enc, argc, argv);
        raw = enc.data;
        rawlen = enc.len;
    }
    wconn_send(c, t->wconn, raw, rawlen, 1, false);
    buf_close(&enc);
}

static void do_exec(gw_client *c, gw_tx *t)
{
    gw_t *g = c->g;
    /* A watch connection that dropped lost the node's watches with it (and
     * rconn would open a fresh one, without them, to send EXEC). */
    if (t->watching && !rconn_connected(t->wconn)) t->wbroken = true;
    if (t->dirty) {
        gwc_local_error(c, "EXECABORT Transaction discarded because of previous errors.");
    } else if (t->watching && t->wbroken) {
        cairn_buf b;
        buf_init(&b);
        reply_null_array(&b, c->proto);
        gwc_local_raw(c, b.data, b.len);
        buf_close(&b);
    } else if (t->watching && t->has_shard && t->shard != t->wshard) {
        g->cross_shard++;
        gwc_local_error(c, "CROSSSHARD the transaction's keys and the watched keys live in different "
                           "shards (use {hash tags} to keep them together)");
    } else if (t->nqueued == 0 && !t->watching) {
        gwc_local_raw(c, "*0\r\n", 4);
    } else if (!t->watching && g->nshards == 0) {
        gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
    } else {
        buf_append(&t->block, EXEC_REQ, sizeof(EXEC_REQ) - 1);
        size_t nframes = t->nqueued + 2;
        if (t->watching) {
            if (t->wproto != c->proto) { /* switched since WATCH: EXEC in the new protocol */
                cairn_buf hb;
                buf_init(&hb);
                gwc_encode(&hb, 2, (resp_arg[]){{"HELLO", 5}, {c->proto == 3 ? "3" : "2", 1}});
                buf_append(&hb, t->block.data, t->block.len);
                buf_close(&t->block);
                t->block = hb;
                nframes++;
            }
            /* The connection goes with the reply (EXEC ends the watches). */
            wconn_send(c, t->wconn, t->block.data, t->block.len, nframes, true);
            t->wconn = NULL;
            t->watching = false;
        } else {
            uint32_t shard = t->has_shard ? t->shard : g->shards[0].id;
            gw_req *r = gwc_req_new(c, gwc_slot_new(c), shard, t->write, t->block.data, t->block.len);
            r->nframes = nframes;
            r->to_primary = true;
            gwc_send_or_queue(r);
        }
    }
    multi_reset(t);
    unwatch(t); /* EXEC ends the watches whatever its outcome */
}

bool gw_tx_route(gw_client *c, size_t argc, const resp_arg *argv, const char *raw, size_t rawlen)
{
    const resp_arg *a = &argv[0];
    gw_tx *t = c->tx;
    bool multi = t && t->multi;
    /* The common case, cheaply: not in MULTI and no transaction command. */
    char first = (char)(a->len ? a->p[0] | 0x20 : 0);
    if (!multi && !((a->len == 5 && (first == 'm' || first == 'w')) || (a->len == 4 && first == 'e') ||
                    (a->len == 7 && (first == 'd' || first == 'u'))))
        return false;
    if (is_cmd(a, "multi")) {
        if (argc != 1) gwc_local_error(c, "ERR wrong number of arguments for 'multi' command");
        else if (multi) gwc_local_error(c, "ERR MULTI calls can not be nested");
        else {
            t = tx_get(c);
            multi_reset(t);
            t->multi = true;
            buf_append(&t->block, MULTI_REQ, sizeof(MULTI_REQ) - 1);
            gwc_local_raw(c, "+OK\r\n", 5);
        }
    } else if (is_cmd(a, "exec")) {
        if (argc != 1) {
            if (multi) t->dirty = true;
            gwc_local_error(c, "ERR wrong number of arguments for 'exec' command");
        } else if (!multi) gwc_local_error(c, "ERR EXEC without MULTI");
        else do_exec(c, t);
    } else if (is_cmd(a, "discard")) {
        if (argc != 1) {
            if (multi) t->dirty = true;
            gwc_local_error(c, "ERR wrong number of arguments for 'discard' command");
        } else if (!multi) gwc_local_error(c, "ERR DISCARD without MULTI");
        else {
            multi_reset(t);
            unwatch(t);
            gwc_local_raw(c, "+OK\r\n", 5);
        }
    } else if (is_cmd(a, "watch")) {
        if (argc < 2) {
            if (multi) t->dirty = true;
            gwc_local_error(c, "ERR wrong number of arguments for 'watch' command");
        } else if (multi) gwc_local_error(c, "ERR WATCH inside MULTI is not allowed");
        else do_watch(c, tx_get(c), argc, argv, raw, rawlen);
    } else if (is_cmd(a, "unwatch")) {
        if (argc != 1) {
            if (multi) t->dirty = true;
            gwc_local_error(c, "ERR wrong number of arguments for 'unwatch' command");
        } else if (multi) queue_cmd(c, t, argc, argv, raw, rawlen); /* Redis queues it */
        else {
            if (t) unwatch(t);
            gwc_local_raw(c, "+OK\r\n", 5);
        }
    } else if (multi && !is_cmd(a, "quit")) {
        queue_cmd(c, t, argc, argv, raw, rawlen);
    } else {
        return false;
    }
    return true;
}
