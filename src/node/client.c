/*
 * client.c — one client connection: accept, read, parse, execute, reply.
 *
 * Reading.  A client with no partial request reads into the node's shared
 * buffer (so 5,000 idle connections cost no buffer each); requests are parsed
 * in place (argv points into that buffer) and only an incomplete tail is
 * copied into the client's own `query` buffer, which then receives the next
 * reads until the request completes.
 *
 * Replies and invariant 3.  Replies are appended to `out`.  After each
 * command client_mark() records the LSN of the latest write the reply could
 * have observed (node->last_lsn); bytes up to a mark leave only once
 * node->commit_lsn has reached it.  (DESIGN.md invariant 3: "No reply reveals
 * uncommitted state".)  On a single node "committed" means written to the
 * log per the fsync policy; replication raises the bar to "on every replica".
 *
 * Writing.  client_flush_all() runs before the loop sleeps: uv_try_write
 * first; whatever the socket does not take goes out by one uv_write at a
 * time (bytes are handed over, so `out` keeps filling meanwhile).
 *
 * Backpressure.  A client whose unsent output passes OUT_PAUSE stops being
 * read (and its queued requests stop executing) until the backlog halves;
 * so a client that never reads its replies costs at most about OUT_PAUSE
 * plus one reply.  A single reply that pushes a client past
 * client-output-buffer-limit closes it, with a log line.
 */
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "node/node.h"
#include "node/persist.h"
#include "node/replica.h"

#define OUT_PAUSE (1u << 20)
#define QUERY_CHUNK (16u * 1024)

static void on_close(uv_handle_t *h);
static void process_query(client_t *c);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Read again unless something holds the client back. */
static void resume_reading(client_t *c)
{
    if (!(c->flags & (CLIENT_CLOSING | CLIENT_BLOCKED | CLIENT_READ_PAUSED |
                      CLIENT_CLOSE_AFTER_REPLY)))
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void list_add(client_t **head, client_t *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head) (*head)->prev = c;
    *head = c;
}

static void list_del(client_t **head, client_t *c)
{
    if (c->prev) c->prev->next = c->next;
    else *head = c->next;
    if (c->next) c->next->prev = c->prev;
}

void client_want_write(client_t *c)
{
    if (c->flags & (CLIENT_PENDING | CLIENT_REPLAY)) return;
    node_t *n = c->node;
    c->flags |= CLIENT_PENDING;
    c->pend_prev = NULL;
    c->pend_next = n->pending;
    if (n->pending) n->pending->pend_prev = c;
    n->pending = c;
}

static void pending_del(client_t *c)
{
    if (!(c->flags & CLIENT_PENDING)) return;
    node_t *n = c->node;
    if (c->pend_prev) c->pend_prev->pend_next = c->pend_next;
    else n->pending = c->pend_next;
    if (c->pend_next) c->pend_next->pend_prev = c->pend_prev;
    c->flags &= ~CLIENT_PENDING;
}

size_t client_out_pending(const client_t *c) { return buf_unread(&c->out) + c->inflight; }

void client_mark(client_t *c)
{
    node_t *n = c->node;
    uint64_t end = c->out_base + c->out.len;
    assert(c->out_ok <= end); /* offsets still line up with the buffer */
    if (c->flags & CLIENT_REPLAY) {
        buf_reset(&c->out, 4096);
        c->out_base = c->out_ok = 0;
        return;
    }
    if ((c->nmarks == 0 && n->last_lsn <= n->commit_lsn) || (c->flags & CLIENT_NOHOLD)) {
        c->out_ok = end;
    } else if (c->nmarks && c->marks[c->nmarks - 1].lsn == n->last_lsn) {
        c->marks[c->nmarks - 1].end = end;
    } else {
        if (c->nmarks == c->capmarks) {
            c->capmarks = c->capmarks ? c->capmarks * 2 : 8;
            c->marks = cairn_realloc(c->marks, c->capmarks * sizeof(*c->marks));
        }
        c->marks[c->nmarks++] = (hold_mark){end, n->last_lsn};
    }
    if (end > c->out_base + c->out.pos) client_want_write(c);
    size_t limit = (size_t)n->cfg.client_output_buffer_limit;
    if (limit && client_out_pending(c) > limit) {
        log_warn("client id=%llu addr=%s closed for overcoming of output buffer limits "
                 "(%zu bytes pending)",
                 (unsigned long long)c->id, c->addr, client_out_pending(c));
        n->stats.evicted_clients++;
        client_close(c);
    }
}

static void release_marks(client_t *c)
{
    uint64_t commit = c->node->commit_lsn;
    size_t i = 0;
    while (i < c->nmarks && c->marks[i].lsn <= commit) c->out_ok = c->marks[i++].end;
    if (i) {
        memmove(c->marks, c->marks + i, (c->nmarks - i) * sizeof(*c->marks));
        c->nmarks -= i;
    }
}

typedef struct write_req {
    uv_write_t req;
    char *data;
    size_t len;
} write_req;

static void on_write(uv_write_t *req, int status)
{
    write_req *w = (write_req *)req;
    client_t *c = req->data;
    c->inflight -= w->len;
    cairn_free(w->data);
    cairn_free(w);
    if (status < 0) {
        if (status != UV_ECANCELED) client_close(c);
        return;
    }
    client_want_write(c); /* before-sleep continues the flush */
}

/* Hand every sendable byte of c to the kernel or to one uv_write. */
static void flush_one(client_t *c)
{
    node_t *n = c->node;
    if (c->flags & CLIENT_CLOSING) return;
    release_marks(c);
    while (c->inflight == 0) {
        size_t sendable = (size_t)(c->out_ok - (c->out_base + c->out.pos));
        if (sendable == 0) break;
        uv_buf_t b = uv_buf_init(c->out.data + c->out.pos, (unsigned)(sendable > (1u << 30) ? (1u << 30) : sendable));
        int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (w == UV_EAGAIN) w = 0;
        if (w < 0) {
            client_close(c);
            return;
        }
        c->out.pos += (size_t)w;
        n->stats.net_out += (uint64_t)w;
        if ((size_t)w < b.len) {
            /* The socket is full: pass the rest to a uv_write.  When it is
             * the whole buffer, hand over the allocation instead of copying. */
            size_t rest = b.len - (size_t)w;
            write_req *wr = cairn_malloc(sizeof(*wr));
            if (c->out.pos + rest == c->out.len) {
                wr->data = c->out.data;
                memmove(wr->data, wr->data + c->out.pos, rest);
                c->out_base += c->out.len;
                c->out.data = NULL;
                c->out.len = c->out.pos = c->out.cap = 0;
            } else {
                wr->data = cairn_malloc(rest);
                memcpy(wr->data, c->out.data + c->out.pos, rest);
                c->out.pos += rest;
            }
            wr->len = rest;
            wr->req.data = c;
            c->inflight += rest;
            n->stats.net_out += rest;
            uv_buf_t wb = uv_buf_init(wr->data, (unsigned)rest);
            int rc = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &wb, 1, on_write);
            if (rc < 0) {
                c->inflight -= rest;
                cairn_free(wr->data);
                cairn_free(wr);
                client_close(c);
                return;
            }
        }
    }
    if (c->out.pos == c->out.len) {
        /* Everything appended so far is out: rebase, keep a small buffer. */
        c->out_base += c->out.len;
        buf_reset(&c->out, 16 * 1024);
    } else if (c->out.pos >= c->out.len / 2) {
        /* Held replies sit behind sent bytes.  buf_reserve() would compact
         * them on the next append, under this very condition, and shift
         * every absolute offset (out_ok, the marks) onto bytes still held;
         * compact here, moving the base along.  Only flush_one() moves
         * out.pos, so until the next flush pos < len / 2 and no append
         * compacts. */
        c->out_base += c->out.pos;
        buf_compact(&c->out);
    }
    if ((c->flags & CLIENT_READ_PAUSED) && client_out_pending(c) < OUT_PAUSE / 2) {
        c->flags &= ~CLIENT_READ_PAUSED;
        process_query(c);
        if (c->flags & CLIENT_CLOSING) return;
    }
    if ((c->flags & CLIENT_CLOSE_AFTER_REPLY) && c->nmarks == 0 && buf_unread(&c->out) == 0 &&
        c->out_ok == c->out_base + c->out.len) {
        if (c->inflight == 0) {
            client_close(c);
            return;
        }
    }
}

void client_flush_all(node_t *n)
{
    client_t *c = n->pending;
    while (c) {
        client_t *next = c->pend_next;
        flush_one(c);
        if (!(c->flags & CLIENT_CLOSING) && c->nmarks == 0 &&
            c->out_ok == c->out_base + c->out.pos)
            pending_del(c);
        c = next;
    }
}

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    client_t *c = h->data;
    node_t *n = c->node;
    if (buf_unread(&c->query) == 0 && n->readbuf) {
        b->base = n->readbuf;
        b->len = n->readbuf_size;
        return;
    }
    size_t need = resp_parser_need(&c->parser);
    if (need < QUERY_CHUNK) need = QUERY_CHUNK;
    b->base = buf_reserve(&c->query, need);
    b->len = c->query.cap - c->query.len;
}

/* Execute the complete requests in data[0..len); returns bytes consumed.
 * Stops early when the client blocks, pauses or is closing. */
static size_t execute(client_t *c, const char *data, size_t len)
{
    node_t *n = c->node;
    size_t off = 0;
    while (off < len) {
        if (c->flags & (CLIENT_CLOSE_AFTER_REPLY | CLIENT_CLOSING | CLIENT_BLOCKED |
                        CLIENT_READ_PAUSED))
            break;
        size_t used = 0;
        int rc = resp_parse_request(&c->parser, data + off, len - off, &used);
        if (rc == CAIRN_EAGAIN) break;
        if (rc < 0) {
            n->stats.proto_errors++;
            log_info("protocol error from client id=%llu addr=%s: %s", (unsigned long long)c->id,
                     c->addr, c->parser.err ? c->parser.err : "?");
            reply_errorf(&c->out, "ERR %s", c->parser.err ? c->parser.err : "Protocol error");
            c->flags |= CLIENT_CLOSE_AFTER_REPLY;
            client_mark(c);
            resp_parser_reset(&c->parser);
            return len;
        }
        off += used;
        if (c->parser.argc > 0) {
            c->argc = c->parser.argc;
            c->argv = c->parser.argv;
            client_exec(c);
            c->argc = 0;
            c->argv = NULL;
            if (c->flags & CLIENT_CLOSING) return len;
            client_mark(c);
            if (c->flags & CLIENT_CLOSING) return len;
            if (client_out_pending(c) > OUT_PAUSE) c->flags |= CLIENT_READ_PAUSED;
        }
    }
    if ((c->flags & (CLIENT_READ_PAUSED | CLIENT_BLOCKED)) && !(c->flags & CLIENT_CLOSING))
        uv_read_stop((uv_stream_t *)&c->tcp);
    return off;
}

/* Execute what is buffered in c->query (after new bytes arrived, or when
 * the client is resumed), then read again if nothing holds it back. */
static void process_query(client_t *c)
{
    if (buf_unread(&c->query)) {
        size_t used = execute(c, c->query.data + c->query.pos, buf_unread(&c->query));
        if (c->flags & CLIENT_CLOSING) return;
        c->query.pos += used;
        if (buf_unread(&c->query) == 0) buf_reset(&c->query, 0);
    }
    resume_reading(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    client_t *c = s->data;
    node_t *n = c->node;
    if (nread < 0) {
        client_close(c);
        return;
    }
    if (nread == 0) return;
    n->stats.net_in += (uint64_t)nread;
    c->last_ms = clock_ms();
    if (b->base == n->readbuf) {
        size_t used = execute(c, n->readbuf, (size_t)nread);
        if (c->flags & CLIENT_CLOSING) return;
        if (used < (size_t)nread) buf_append(&c->query, n->readbuf + used, (size_t)nread - used);
    } else {
        c->query.len += (size_t)nread;
        process_query(c);
        if (c->flags & CLIENT_CLOSING) return;
    }
    /* A large request still arriving: if it is our primary's replication
     * stream, that is progress (repl.h, "Large entries"). */
    if (n->replica && buf_unread(&c->query)) replica_stream_progress(c);
}

void client_unblock(client_t *c)
{
    c->flags &= ~CLIENT_BLOCKED;
    client_mark(c);
    if (c->flags & CLIENT_CLOSING) return;
    process_query(c);
}

/* ---- lifecycle ---- */

static void on_close(uv_handle_t *h)
{
    client_t *c = h->data;
    multi_forget(c); /* the queue of an EXEC that closed its own client */
    resp_parser_close(&c->parser);
    buf_close(&c->query);
    buf_close(&c->out);
    cairn_free(c->marks);
    cairn_free(c->name);
    cairn_free(c->lib_name);
    cairn_free(c->lib_ver);
    cairn_free(c);
}

void client_close(client_t *c)
{
    if (c->flags & CLIENT_CLOSING) return;
    node_t *n = c->node;
    c->flags |= CLIENT_CLOSING;
    pending_del(c);
    persist_forget_client(n, c); /* a SAVE waiter must not be answered later */
    multi_forget(c);             /* its watches; its queued commands */
    list_del(&n->clients, c);
    n->nclients--;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void fmt_addr(const struct sockaddr_storage *ss, char *out, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, len, "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *server, int status)
{
    node_t *n = server->data;
    if (status < 0) {
        log_warn("accept: %s", uv_strerror(status));
        return;
    }
    client_t *c = cairn_calloc(1, sizeof(*c));
    uv_tcp_init(n->loop, &c->tcp);
    c->tcp.data = c;
    c->node = n;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)cairn_free);
        return;
    }
    c->id = ++n->next_client_id;
    c->proto = 2;
    c->ctime_ms = c->last_ms = clock_ms();
    c->fd = -1;
    uv_fileno((uv_handle_t *)&c->tcp, &c->fd);
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, c->addr, sizeof(c->addr));
    len = sizeof(ss);
    if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &len) == 0)
        fmt_addr(&ss, c->laddr, sizeof(c->laddr));
    resp_limits lim = {
        .max_bulk = (size_t)n->cfg.proto_max_bulk_len,
        .max_args = (size_t)n->cfg.proto_max_multibulk_len,
        .max_inline = (size_t)n->cfg.proto_inline_max_size,
    };
    resp_parser_init(&c->parser, &lim);
    buf_init(&c->query);
    buf_init(&c->out);
    if (!n->cfg.requirepass || !n->cfg.requirepass[0]) c->flags |= CLIENT_AUTHED;
    list_add(&n->clients, c);
    n->nclients++;
    n->stats.connections++;
    if ((int64_t)n->nclients > n->cfg.maxclients) {
        n->stats.rejected_conns++;
        reply_error(&c->out, "ERR max number of clients reached");
        c->flags |= CLIENT_CLOSE_AFTER_REPLY;
        client_mark(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_tcp_keepalive(&c->tcp, 1, 300);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int client_listen(node_t *n)
{
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(n->cfg.bind, (int)n->cfg.port, (struct sockaddr_in *)&addr);
    if (rc < 0) rc = uv_ip6_addr(n->cfg.bind, (int)n->cfg.port, (struct sockaddr_in6 *)&addr);
    if (rc < 0) {
        log_error("bad bind address '%s'", n->cfg.bind);
        return rc;
    }
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    rc = uv_tcp_bind(&n->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&n->listener, 511, on_connection);
    if (rc < 0) {
        log_error("cannot listen on %s:%lld: %s", n->cfg.bind, (long long)n->cfg.port,
                  uv_strerror(rc));
        return rc;
    }
    return 0;
}

void client_info_line(client_t *c, cairn_buf *b)
{
    int64_t now = clock_ms();
    char line[1024], flags[8];
    size_t nf = 0;
    /* Redis's letters, in its order: x multi, b blocked, d dirty CAS,
     * c close after reply, r readonly (replica reads); N for none. */
    if (c->flags & CLIENT_MULTI) flags[nf++] = 'x';
    if (c->flags & CLIENT_BLOCKED) flags[nf++] = 'b';
    if (c->flags & CLIENT_DIRTY_CAS) flags[nf++] = 'd';
    if (c->flags & CLIENT_CLOSE_AFTER_REPLY) flags[nf++] = 'c';
    if (c->flags & CLIENT_READONLY) flags[nf++] = 'r';
    if (nf == 0) flags[nf++] = 'N';
    flags[nf] = '\0';
    long long multi = (c->flags & CLIENT_MULTI) ? (long long)c->multi.count : -1;
    int l = snprintf(line, sizeof(line),
                     "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=0 "
                     "sub=0 psub=0 ssub=0 multi=%lld qbuf=%zu qbuf-free=%zu argv-mem=0 "
                     "multi-mem=%zu rbs=%zu rbp=0 obl=%zu oll=0 omem=%zu tot-mem=%zu events=r "
                     "cmd=%s user=default redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
                     (unsigned long long)c->id, c->addr, c->laddr, c->fd, c->name ? c->name : "",
                     (long long)((now - c->ctime_ms) / 1000), (long long)((now - c->last_ms) / 1000),
                     flags, multi, buf_unread(&c->query), c->query.cap - c->query.len,
                     c->multi.bytes, c->query.cap, buf_unread(&c->out), client_out_pending(c),
                     sizeof(*c) + c->query.cap + c->out.cap + c->multi.bytes,
                     c->last_cmd ? c->last_cmd : "NULL", c->proto,
                     c->lib_name ? c->lib_name : "", c->lib_ver ? c->lib_ver : "");
    buf_append(b, line, (size_t)(l < (int)sizeof(line) ? l : (int)sizeof(line) - 1));
}
