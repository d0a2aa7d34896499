/*
 * rconn.c — see rconn.h.
 *
 *   DOWN --send--> CONNECTING --connected--> UP --error/timeout--> DOWN
 *                                   (queued bytes flushed)   (pending failed,
 *                                                             backoff before
 *                                                             the next connect)
 */
#include "net/rconn.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/resp.h"
#include "lib/util.h"

enum { DOWN, CONNECTING, UP };

typedef struct pending {
    rconn_reply_cb cb;
    void *arg;
    int64_t sent_ms;
    size_t nframes; /* reply frames the request answers with (>= 1) */
} pending;

typedef struct wreq {
    uv_write_t req;
    char *data;
} wreq;

struct rconn {
    uv_loop_t *loop;
    char *addr;
    struct sockaddr_storage sa;
    rconn_opts opts;
    int state;
    uv_tcp_t *tcp;          /* NULL when DOWN; freed by its close callback */
    uv_connect_t connect;
    uv_timer_t timer;       /* connect timeout, reply timeout, backoff */
    uv_prepare_t prep;      /* writes once per loop turn: requests batch up */
    int closing_handles;
    cairn_buf out;          /* requests not yet written */
    cairn_buf in;           /* reply bytes not yet matched */
    pending *q;             /* ring of requests awaiting replies */
    size_t qhead, qlen, qcap;
    size_t unsent;          /* requests in `out`, not yet on the wire (tail of q) */
    int64_t down_until;     /* backoff: no connect before this (mono ms) */
    int64_t backoff;
    int destroyed;
    char *hello;
    size_t hello_len;
};

static void start_connect(rconn_t *c);
static void flush(rconn_t *c);

/* The loop's clock (updated once per loop turn): timeouts and backoff
 * here are tens of milliseconds and up, and a clock read per request would
 * cost more than the request's own bookkeeping. */
static int64_t now_ms(const rconn_t *c) { return (int64_t)uv_now(c->loop); }

static void q_push(rconn_t *c, rconn_reply_cb cb, void *arg, size_t nframes)
{
    if (c->qlen == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 64;
        pending *nq = cairn_malloc(ncap * sizeof(*nq));
        for (size_t i = 0; i < c->qlen; i++) nq[i] = c->q[(c->qhead + i) % c->qcap];
        cairn_free(c->q);
        c->q = nq;
        c->qcap = ncap;
        c->qhead = 0;
    }
    c->q[(c->qhead + c->qlen) % c->qcap] = (pending){cb, arg, now_ms(c), nframes};
    c->qlen++;
}

static void q_push_front(rconn_t *c, rconn_reply_cb cb, void *arg, size_t nframes)
{
    q_push(c, cb, arg, nframes); /* grow if needed, then rotate the new entry to the head */
    pending p = c->q[(c->qhead + c->qlen - 1) % c->qcap];
    c->qhead = (c->qhead + c->qcap - 1) % c->qcap;
    c->q[c->qhead] = p;
}

static void swallow(void *arg, const char *reply, size_t len)
{
    (void)arg;
    (void)reply;
    (void)len;
}

static pending q_pop(rconn_t *c)
{
    pending p = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    return p;
}

static void on_tcp_closed(uv_handle_t *h) { cairn_free(h); }

/* Drop the connection: fail every request (sent or not), back off. */
static void reset(rconn_t *c, const char *why)
{
    int was_up = c->state == UP;
    if (c->tcp) {
        c->tcp->data = NULL;
        uv_close((uv_handle_t *)c->tcp, on_tcp_closed);
        c->tcp = NULL;
    }
    c->state = DOWN;
    uv_timer_stop(&c->timer);
    c->out.len = c->out.pos = 0;
    c->in.len = c->in.pos = 0;
    size_t unsent = c->unsent;
    c->unsent = 0;
    if (why && !c->destroyed) log_debug("connection to %s lost: %s", c->addr, why);
    c->backoff = c->backoff ? (c->backoff * 2 > 1000 ? 1000 : c->backoff * 2) : 50;
    c->down_until = now_ms(c) + c->backoff;
    /* Callbacks may send again (queueing on the now DOWN connection): pop
     * only what was pending when the failure happened. */
    size_t n = c->qlen, sent = c->qlen - unsent;
    for (size_t i = 0; i < n && c->qlen; i++) {
        pending p = q_pop(c);
        p.cb(p.arg, NULL, i < sent ? RCONN_MAYBE_SENT : RCONN_UNSENT);
    }
    if (was_up && c->opts.on_state) c->opts.on_state(c->opts.state_arg, 0);
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    rconn_t *c = h->data;
    (void)sz;
    b->base = buf_reserve(&c->in, 64 * 1024);
    b->len = c->in.cap - c->in.len;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    rconn_t *c = s->data;
    (void)b;
    if (!c) return;
    if (nread < 0) {
        reset(c, uv_strerror((int)nread));
        return;
    }
    c->in.len += (size_t)nread;
    while (buf_unread(&c->in)) {
        if (c->qlen == c->unsent) {
            reset(c, "reply without a request");
            return;
        }
        /* A request may answer with several frames (MULTI ... EXEC): its
         * callback waits for all of them and gets them as one span. */
        size_t nframes = c->q[c->qhead].nframes, flen = 0, f = 0;
        int rc = 0;
        while (f < nframes) {
            size_t one;
            rc = resp_scan_reply(c->in.data + c->in.pos + flen, buf_unread(&c->in) - flen,
                                 RESP_DEPTH_MAX, &one);
            if (rc < 0) break;
            flen += one;
            f++;
        }
        if (rc == CAIRN_EAGAIN) break;
        if (rc < 0) {
            reset(c, "malformed reply");
            return;
        }
        pending p = q_pop(c);
        const char *frame = c->in.data + c->in.pos;
        c->in.pos += flen;
        /* The callback may send (appends to out, not in) or destroy c. */
        p.cb(p.arg, frame, flen);
        if (c->destroyed || c->state != UP) return;
    }
    buf_compact(&c->in);
    if (c->in.cap > (1u << 20) && c->in.len == 0) buf_reset(&c->in, 0);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    rconn_t *c = req->data;
    cairn_free(w->data);
    cairn_free(w);
    if (status < 0 && c && status != UV_ECANCELED) reset(c, uv_strerror(status));
}

static void flush(rconn_t *c)
{
    if (c->state != UP || buf_unread(&c->out) == 0) return;
    c->unsent = 0;
    /* Most batches fit the socket buffer: write them now, and hand only a
     * remainder to an asynchronous write. */
    uv_buf_t b = uv_buf_init(c->out.data + c->out.pos, (unsigned)buf_unread(&c->out));
    int rc = uv_try_write((uv_stream_t *)c->tcp, &b, 1);
    if (rc == UV_EAGAIN) rc = 0;
    if (rc < 0) {
        reset(c, uv_strerror(rc));
        return;
    }
    c->out.pos += (size_t)rc;
    if (c->out.pos == c->out.len) {
        c->out.pos = c->out.len = 0;
        if (c->out.cap > (1u << 20)) buf_reset(&c->out, 0);
        return;
    }
    wreq *w = cairn_malloc(sizeof(*w));
    /* Hand the buffer to the write; start a fresh one. */
    w->data = c->out.data;
    size_t len = c->out.len;
    if (c->out.pos) memmove(w->data, w->data + c->out.pos, len - c->out.pos);
    len -= c->out.pos;
    buf_init(&c->out);
    w->req.data = c;
    b = uv_buf_init(w->data, (unsigned)len);
    rc = uv_write(&w->req, (uv_stream_t *)c->tcp, &b, 1, on_write);
    if (rc < 0) {
        cairn_free(w->data);
        cairn_free(w);
        reset(c, uv_strerror(rc));
    }
}

static void on_timer(uv_timer_t *t)
{
    rconn_t *c = t->data;
    if (c->state == CONNECTING) {
        reset(c, "connect timed out");
        return;
    }
    if (c->state == UP && c->opts.reply_timeout_ms > 0 && c->qlen > c->unsent) {
        pending *oldest = &c->q[c->qhead];
        if (now_ms(c) - oldest->sent_ms > c->opts.reply_timeout_ms) {
            reset(c, "reply timed out");
            return;
        }
    }
    if (c->state == DOWN && c->qlen) start_connect(c);
}

static void on_connect(uv_connect_t *req, int status)
{
    rconn_t *c = req->data;
    if (!c || c->destroyed) return;
    if (status < 0) {
        reset(c, uv_strerror(status));
        return;
    }
    c->state = UP;
    c->backoff = 0;
    if (c->hello) {
        /* The hello goes before everything queued while connecting; its
         * frames are answered as one span, swallowed whole. */
        cairn_buf nb;
        buf_init(&nb);
        buf_append(&nb, c->hello, c->hello_len);
        buf_append(&nb, c->out.data + c->out.pos, buf_unread(&c->out));
        buf_close(&c->out);
        c->out = nb;
        q_push_front(c, swallow, NULL, c->opts.hello_frames ? c->opts.hello_frames : 1);
        c->unsent++;
    }
    uv_tcp_nodelay(c->tcp, 1);
    uv_read_start((uv_stream_t *)c->tcp, on_alloc, on_read);
    uv_timer_stop(&c->timer);
    if (c->opts.reply_timeout_ms > 0) {
        uint64_t every = (uint64_t)(c->opts.reply_timeout_ms / 4 + 1);
        uv_timer_start(&c->timer, on_timer, every, every);
    }
    if (c->opts.on_state) c->opts.on_state(c->opts.state_arg, 1);
    flush(c);
}

static void start_connect(rconn_t *c)
{
    if (c->state != DOWN || c->destroyed) return;
    int64_t wait = c->down_until - now_ms(c);
    if (wait > 0) {
        /* backing off: try when the backoff ends */
        uv_timer_start(&c->timer, on_timer, (uint64_t)wait, 0);
        return;
    }
    c->tcp = cairn_malloc(sizeof(*c->tcp));
    uv_tcp_init(c->loop, c->tcp);
    c->tcp->data = c;
    c->connect.data = c;
    c->state = CONNECTING;
    int rc = uv_tcp_connect(&c->connect, c->tcp, (struct sockaddr *)&c->sa, on_connect);
    if (rc < 0) {
        reset(c, uv_strerror(rc));
        return;
    }
    uv_timer_start(&c->timer, on_timer, (uint64_t)c->opts.connect_timeout_ms, 0);
}

/* "ip:port" (IPv4 or IPv6 literal, port 1-65535) into sa; false if not. */
static bool parse_addr(const char *addr, size_t len, struct sockaddr_storage *sa)
{
    const char *colon = NULL;
    for (size_t i = len; i > 0; i--)
        if (addr[i - 1] == ':') {
            colon = addr + i - 1;
            break;
        }
    if (!colon || colon == addr) return false;
    char host[256];
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof(host)) return false;
    memcpy(host, addr, hl);
    host[hl] = '\0';
    int64_t port;
    if (!str_to_i64(colon + 1, len - hl - 1, &port) || port <= 0 || port > 65535) return false;
    return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0 ||
           uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0;
}

bool rconn_addr_list_ok(const char *list, char *bad, size_t badlen)
{
    struct sockaddr_storage sa;
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (!parse_addr(p, len, &sa)) {
            snprintf(bad, badlen, "%.*s", (int)len, p);
            return false;
        }
        if (!comma) return true;
        p = comma + 1;
    }
}

rconn_t *rconn_create(uv_loop_t *loop, const char *addr, const rconn_opts *opts)
{
    struct sockaddr_storage sa;
    if (!parse_addr(addr, strlen(addr), &sa)) return NULL;
    rconn_t *c = cairn_calloc(1, sizeof(*c));
    c->sa = sa;
    c->loop = loop;
    c->addr = cairn_strndup(addr, strlen(addr));
    if (opts) c->opts = *opts;
    if (c->opts.hello && c->opts.hello_len) {
        c->hello = cairn_strndup(c->opts.hello, c->opts.hello_len);
        c->hello_len = c->opts.hello_len;
    }
    if (!c->opts.connect_timeout_ms) c->opts.connect_timeout_ms = 1000;
    if (!c->opts.max_pending) c->opts.max_pending = 100000;
    buf_init(&c->out);
    buf_init(&c->in);
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    uv_prepare_init(loop, &c->prep);
    c->prep.data = c;
    return c;
}

static void on_timer_closed(uv_handle_t *h)
{
    rconn_t *c = h->data;
    if (--c->closing_handles > 0) return;
    buf_close(&c->out);
    buf_close(&c->in);
    cairn_free(c->q);
    cairn_free(c->hello);
    cairn_free(c->addr);
    cairn_free(c);
}

void rconn_destroy(rconn_t *c)
{
    if (!c || c->destroyed) return;
    c->destroyed = 1;
    reset(c, NULL);
    c->closing_handles = 2;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
    uv_close((uv_handle_t *)&c->prep, on_timer_closed);
}

static int admit(rconn_t *c)
{
    if (c->destroyed) return CAIRN_EINVAL;
    if (c->qlen >= c->opts.max_pending) return CAIRN_ELIMIT;
    return 0;
}

static void on_prep(uv_prepare_t *p)
{
    rconn_t *c = p->data;
    uv_prepare_stop(p);
    flush(c);
}

static void queued(rconn_t *c, rconn_reply_cb cb, void *arg, size_t nframes)
{
    q_push(c, cb, arg, nframes ? nframes : 1);
    c->unsent++;
    /* Everything queued during this loop turn goes out in one write. */
    if (c->state == UP) uv_prepare_start(&c->prep, on_prep);
    else if (c->state == DOWN) start_connect(c);
}

int rconn_send(rconn_t *c, size_t argc, const char *const *argv, const size_t *lens,
               rconn_reply_cb cb, void *arg)
{
    int rc = admit(c);
    if (rc < 0) return rc;
    buf_append(&c->out, "*", 1);
    buf_append_u64(&c->out, argc);
    buf_append(&c->out, "\r\n", 2);
    for (size_t i = 0; i < argc; i++) {
        size_t l = lens ? lens[i] : strlen(argv[i]);
        buf_append(&c->out, "$", 1);
        buf_append_u64(&c->out, l);
        buf_append(&c->out, "\r\n", 2);
        buf_append(&c->out, argv[i], l);
        buf_append(&c->out, "\r\n", 2);
    }
    queued(c, cb, arg, 1);
    return 0;
}

int rconn_sendv(rconn_t *c, rconn_reply_cb cb, void *arg, size_t argc, ...)
{
    const char *argv[64];
    if (argc > 64) return CAIRN_EINVAL;
    va_list ap;
    va_start(ap, argc);
    for (size_t i = 0; i < argc; i++) argv[i] = va_arg(ap, const char *);
    va_end(ap);
    return rconn_send(c, argc, argv, NULL, cb, arg);
}

int rconn_send_raw(rconn_t *c, const char *req, size_t len, rconn_reply_cb cb, void *arg)
{
    return rconn_send_raw_n(c, req, len, 1, cb, arg);
}

int rconn_send_raw_n(rconn_t *c, const char *req, size_t len, size_t nframes, rconn_reply_cb cb,
                     void *arg)
{
    int rc = admit(c);
    if (rc < 0) return rc;
    buf_append(&c->out, req, len);
    queued(c, cb, arg, nframes);
    return 0;
}

void rconn_flush(rconn_t *c)
{
    if (c->state != UP) return;
    uv_prepare_stop(&c->prep);
    flush(c);
}

int rconn_connected(const rconn_t *c) { return c->state == UP; }
size_t rconn_pending(const rconn_t *c) { return c->qlen; }
const char *rconn_addr(const rconn_t *c) { return c->addr; }
