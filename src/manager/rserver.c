/*
 * rserver.c — see rserver.h.
 */
#include "manager/rserver.h"

#include <assert.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"

typedef struct conn conn;

struct rserver {
    uv_loop_t *loop;
    uv_tcp_t listener;
    bool listening;
    resp_limits lim;
    rserver_handler handler;
    void *arg;
    conn *conns;
    size_t nconns;
    bool destroyed;
    conn *current;       /* whose request the handler is running */
    uint64_t next_token; /* rserver_defer */
};

struct conn {
    uv_tcp_t tcp;
    rserver_t *srv;
    conn *prev, *next;
    resp_parser parser;
    cairn_buf in;
    cairn_buf out;
    size_t inflight; /* bytes handed to uv_write, not yet written */
    bool closing, close_after;
    uint64_t deferred; /* token of the reply it waits for; 0 = none */
    char peer[64];
};

typedef struct wreq {
    uv_write_t req;
    char *data;
    size_t len;
} wreq;

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    resp_parser_close(&c->parser);
    buf_close(&c->in);
    buf_close(&c->out);
    cairn_free(c);
}

static void conn_close(conn *c)
{
    if (c->closing) return;
    c->closing = true;
    rserver_t *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_write(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = req->data;
    c->inflight -= w->len;
    cairn_free(w->data);
    cairn_free(w);
    if (c->closing) return;
    if (status < 0 || (c->close_after && c->inflight == 0)) conn_close(c);
}

static void flush(conn *c)
{
    size_t n = buf_unread(&c->out);
    if (n && c->inflight == 0) {
        uv_buf_t b = uv_buf_init(c->out.data + c->out.pos, (unsigned)n);
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w == UV_EAGAIN) w = 0;
        if (w < 0) {
            conn_close(c);
            return;
        }
        c->out.pos += (size_t)w;
        n -= (size_t)w;
    }
    if (n) {
        wreq *w = cairn_malloc(sizeof(*w));
        w->data = cairn_malloc(n);
        memcpy(w->data, c->out.data + c->out.pos, n);
        w->len = n;
        w->req.data = c;
        c->inflight += n;
        uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
        if (rc < 0) {
            c->inflight -= n;
            cairn_free(w->data);
            cairn_free(w);
            conn_close(c);
            return;
        }
    }
    buf_reset(&c->out, 16 * 1024);
    if (c->close_after && c->inflight == 0) conn_close(c);
    else if (c->inflight > RSERVER_OUT_MAX) {
        log_warn("closing %s: %zu bytes of replies unread", c->peer, c->inflight);
        conn_close(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    conn *c = h->data;
    size_t need = resp_parser_need(&c->parser);
    if (need < 16 * 1024) need = 16 * 1024;
    b->base = buf_reserve(&c->in, need);
    b->len = c->in.cap - c->in.len;
}

/* Run the requests in c->in, in order, until one is deferred; then write
 * what they answered.  False if the server was destroyed meanwhile. */
static bool run(conn *c)
{
    rserver_t *s = c->srv;
    while (buf_unread(&c->in) && !c->close_after && !c->closing && !c->deferred) {
        size_t used = 0;
        int rc = resp_parse_request(&c->parser, c->in.data + c->in.pos, buf_unread(&c->in), &used);
        if (rc == CAIRN_EAGAIN) break;
        if (rc < 0) {
            reply_errorf(&c->out, "ERR %s", c->parser.err ? c->parser.err : "Protocol error");
            c->close_after = true;
            break;
        }
        c->in.pos += used;
        if (c->parser.argc == 0) continue;
        s->current = c;
        enum rserver_action a = s->handler(s->arg, c->peer, c->parser.argc, c->parser.argv, &c->out);
        s->current = NULL;
        if (a == RSERVER_CLOSE) c->close_after = true;
        if (s->destroyed) return false; /* the handler shut the server down */
    }
    if (c->closing) return true;
    buf_compact(&c->in);
    if (c->in.len == 0 && c->in.cap > 1024 * 1024) buf_reset(&c->in, 0);
    /* While a reply is deferred, read nothing more: what arrives waits in
     * the socket, not in our memory. */
    if (c->close_after || c->deferred) uv_read_stop((uv_stream_t *)&c->tcp);
    flush(c);
    return true;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    conn *c = st->data;
    (void)b;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->in.len += (size_t)nread;
    run(c);
}

uint64_t rserver_defer(rserver_t *s)
{
    conn *c = s->current;
    assert(c && !c->deferred && "rserver_defer() is for a handler, during its call");
    c->deferred = ++s->next_token;
    return c->deferred;
}

void rserver_complete(rserver_t *s, uint64_t token, const char *reply, size_t len)
{
    if (!s || s->destroyed || token == 0) return;
    assert(!s->current && "rserver_complete() runs requests: not from inside a handler");
    for (conn *c = s->conns; c; c = c->next) {
        if (c->deferred != token) continue;
        c->deferred = 0;
        buf_append(&c->out, reply, len);
        if (run(c) && !c->closing && !c->close_after && !c->deferred)
            uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        return;
    }
}

static void fmt_peer(uv_tcp_t *t, char *out, size_t len)
{
    struct sockaddr_storage ss;
    int sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(out, len, "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *l, int status)
{
    rserver_t *s = l->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    conn *c = cairn_calloc(1, sizeof(*c));
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)cairn_free);
        return;
    }
    resp_parser_init(&c->parser, &s->lim);
    buf_init(&c->in);
    buf_init(&c->out);
    fmt_peer(&c->tcp, c->peer, sizeof(c->peer));
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

rserver_t *rserver_create(uv_loop_t *loop, const resp_limits *lim, rserver_handler h, void *arg)
{
    rserver_t *s = cairn_calloc(1, sizeof(*s));
    s->loop = loop;
    s->lim = lim ? *lim
                 : (resp_limits){RESP_MAX_BULK_DEFAULT, RESP_MAX_ARGS_DEFAULT,
                                 RESP_MAX_INLINE_DEFAULT};
    s->handler = h;
    s->arg = arg;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    return s;
}

int rserver_listen(rserver_t *s, const char *bind, int port)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(bind, port, (struct sockaddr_in *)&addr);
    if (rc < 0) rc = uv_ip6_addr(bind, port, (struct sockaddr_in6 *)&addr);
    if (rc < 0) return rc;
    rc = uv_tcp_bind(&s->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    if (rc == 0) s->listening = true;
    return rc;
}

static void on_listener_closed(uv_handle_t *h) { cairn_free(h->data); }

void rserver_destroy(rserver_t *s)
{
    if (!s || s->destroyed) return;
    s->destroyed = true;
    while (s->conns) conn_close(s->conns);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

size_t rserver_nconns(const rserver_t *s) { return s->nconns; }
