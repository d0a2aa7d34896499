/*
 * gw_client.c — client connections of the gateway: parse, route, merge, and
 * reply in request order.
 *
 * Each request gets a slot at the tail of its client's queue; backend
 * replies fill slots in any order; flush() sends the done prefix.  A slot
 * split over several shards (MGET, MSET, DEL, DBSIZE, KEYS ...) completes
 * when its last part has answered, then merges the parts in key order.
 *
 * A slot outlives its client if the client leaves first: the client's
 * memory goes when its handle is closed and its last slot is settled.
 */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gw_client.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "node/cmd.h"

static void send_req(gw_req *r);
static void process(gw_client *c);
static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

/* ---- slots and replies ---- */

/* Free c once its handle is closed and no slot refers to it.  Returns true
 * when it was freed. */
static bool client_release(gw_client *c)
{
    if (!c->handle_closed || c->refs) return false;
    resp_parser_close(&c->parser);
    buf_close(&c->query);
    buf_close(&c->out);
    cairn_free(c->name);
    cairn_free(c->ryw_lsn);
    cairn_free(c);
    return true;
}

/* Slots and requests are recycled (up to POOL_MAX of each, a slot keeping a
 * small reply buffer): in the steady state a request costs no malloc. */
#define POOL_MAX 4096
#define POOL_KEEP_REPLY 1024

/* Returns true when freeing the slot freed its client too. */
static bool slot_free(gw_slot *s)
{
    gw_client *c = s->c;
    gw_t *g = c->g;
    buf_close(&s->acc);
    for (size_t i = 0; i < s->nvals; i++) resp_value_free(s->vals[i]);
    cairn_free(s->vals);
    cairn_free(s->err);
    if (g->nfree_slots < POOL_MAX && s->reply.cap <= POOL_KEEP_REPLY) {
        cairn_buf keep = s->reply;
        keep.len = keep.pos = 0;
        memset(s, 0, sizeof(*s));
        s->reply = keep;
        s->next = g->free_slots;
        g->free_slots = s;
        g->nfree_slots++;
    } else {
        buf_close(&s->reply);
        cairn_free(s);
    }
    c->refs--;
    return client_release(c);
}

static gw_slot *slot_new(gw_client *c, enum merge kind)
{
    gw_t *g = c->g;
    gw_slot *s = g->free_slots;
    if (s) {
        g->free_slots = s->next;
        g->nfree_slots--;
        s->next = NULL;
    } else {
        s = cairn_calloc(1, sizeof(*s));
    }
    s->c = c;
    s->kind = kind;
    s->proto = c->proto;
    if (c->tail) c->tail->next = s;
    else c->head = s;
    c->tail = s;
    c->nslots++;
    c->refs++;
    return s;
}

void gw_pools_free(gw_t *g)
{
    while (g->free_slots) {
        gw_slot *s = g->free_slots;
        g->free_slots = s->next;
        buf_close(&s->reply);
        cairn_free(s);
    }
    while (g->free_reqs) {
        gw_req *r = g->free_reqs;
        g->free_reqs = r->next_retry;
        cairn_free(r);
    }
    g->nfree_slots = g->nfree_reqs = 0;
}

static size_t pending_bytes(const gw_client *c) { return buf_unread(&c->out) + c->inflight_bytes + c->held; }

/* How many requests a client may have unanswered: about OUT_PAUSE of
 * replies at its recent reply size, between 2 and MAX_SLOTS_PER_CLIENT.
 * A client fetching megabyte values gets a few in flight, not 256 (whose
 * replies would all pile up in the gateway if it stops reading). */
static size_t slot_cap(const gw_client *c)
{
    size_t cap = OUT_PAUSE / (c->reply_avg ? c->reply_avg : 1);
    return cap < 2 ? 2 : cap > MAX_SLOTS_PER_CLIENT ? MAX_SLOTS_PER_CLIENT : cap;
}

static void gwc_close(gw_client *c);
static void write_out(gw_client *c);
static void flush(gw_client *c);

static void on_write(uv_write_t *w, int status)
{
    gw_client *c = w->data;
    uv_buf_t *b = (uv_buf_t *)(w + 1);
    c->inflight_bytes -= b->len;
    cairn_free(b->base);
    cairn_free(w);
    c->writing = false;
    if (status < 0) { /* the peer is gone (even if we had stopped reading) */
        gwc_close(c);
        return;
    }
    if (c->closing) return;
    write_out(c);
    flush(c); /* may resume reading, or finish a QUIT */
}

static void on_wprep(uv_prepare_t *p)
{
    gw_t *g = p->data;
    uv_prepare_stop(p);
    while (g->dirty) {
        gw_client *c = g->dirty;
        g->dirty = c->dnext;
        c->dirty = false;
        write_out(c);
    }
}

static void dirty_del(gw_client *c)
{
    if (!c->dirty) return;
    for (gw_client **pp = &c->g->dirty; *pp; pp = &(*pp)->dnext)
        if (*pp == c) {
            *pp = c->dnext;
            break;
        }
    c->dirty = false;
}

/* Move finished replies, in order, to the output; the write happens once
 * per loop turn (on_wprep), so a pipeline's replies leave together.  Also
 * resumes a client paused for backpressure, and completes a close that
 * waited for earlier replies (QUIT, protocol error). */
static void flush(gw_client *c)
{
    while (c->head && c->head->done) {
        gw_slot *s = c->head;
        c->head = s->next;
        if (!c->head) c->tail = NULL;
        c->nslots--;
        if (!c->closing) buf_append(&c->out, s->reply.data, s->reply.len);
        c->held -= s->held;
        if (slot_free(s)) return; /* c is gone */
    }
    if (c->closing) return;
    if (c->close_after && !c->head) {
        /* everything answered: write now, close once written */
        dirty_del(c);
        write_out(c);
        if (!c->closing && !c->writing && buf_unread(&c->out) == 0) gwc_close(c);
        return;
    }
    if (!c->dirty && buf_unread(&c->out)) {
        gw_t *g = c->g;
        c->dirty = true;
        c->dnext = g->dirty;
        g->dirty = c;
        uv_prepare_start(&g->wprep, on_wprep);
    }
    if (c->paused && c->nslots < slot_cap(c) / 2 && pending_bytes(c) < OUT_PAUSE / 2) {
        c->paused = false;
        process(c);
    } else if (c->drain_wait && c->nslots == 0) {
        c->drain_wait = false;
        process(c);
    }
}

static void write_out(gw_client *c)
{
    if (c->closing || c->writing || buf_unread(&c->out) == 0) return;
    uv_buf_t b = uv_buf_init(c->out.data + c->out.pos, (unsigned)buf_unread(&c->out));
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) {
        gwc_close(c);
        return;
    }
    c->out.pos += (size_t)w;
    if (c->out.pos == c->out.len) {
        buf_reset(&c->out, 64 * 1024);
        return;
    }
    uv_write_t *wr = cairn_malloc(sizeof(*wr) + sizeof(uv_buf_t));
    uv_buf_t *rest = (uv_buf_t *)(wr + 1);
    size_t left = buf_unread(&c->out);
    memmove(c->out.data, c->out.data + c->out.pos, left);
    *rest = uv_buf_init(c->out.data, (unsigned)left);
    buf_init(&c->out);
    wr->data = c;
    c->writing = true;
    c->inflight_bytes += left;
    if (uv_write(wr, (uv_stream_t *)&c->tcp, rest, 1, on_write) < 0) {
        c->inflight_bytes -= left;
        cairn_free(rest->base);
        cairn_free(wr);
        c->writing = false;
        gwc_close(c);
    }
}

static void slot_finish(gw_slot *s)
{
    gw_client *c = s->c;
    if (s->err && s->kind != M_ONE) {
        buf_reset(&s->reply, 0);
        buf_append_str(&s->reply, s->err);
    } else {
        switch (s->kind) {
        case M_ONE:
            break;
        case M_MGET:
            reply_array(&s->reply, s->nvals);
            for (size_t i = 0; i < s->nvals; i++) {
                resp_value *v = s->vals[i];
                if (v && v->type == RESP_BULK) reply_bulk(&s->reply, v->s, v->len);
                else reply_null(&s->reply, s->proto);
            }
            break;
        case M_SUM:
            reply_int(&s->reply, s->sum);
            break;
        case M_OK:
            reply_ok(&s->reply);
            break;
        case M_KEYS:
            reply_array(&s->reply, s->acc_n);
            buf_append(&s->reply, s->acc.data, s->acc.len);
            break;
        case M_SCAN:
            break; /* filled by the part */
        case M_RANDOM: /* one of the shards' random keys: nil only if all are empty */
            if (s->nvals == 0) reply_null(&s->reply, s->proto);
            else {
                resp_value *k = s->vals[(size_t)rand() % s->nvals];
                reply_bulk(&s->reply, k->s, k->len);
            }
            break;
        }
    }
    s->done = true;
    flush(c);
}

/* The gateway's SCAN cursor: the node's cursor, a tag of the node that
 * gave it, and the shard's index:
 *   bits 0-9 shard index | bits 10-17 node tag | bits 18-63 node cursor */
#define SCAN_SHARD_MASK 1023u
#define SCAN_TAG_SHIFT 10
#define SCAN_NODE_SHIFT 18

static unsigned scan_tag(uint64_t node_id)
{
    uint64_t z = node_id * 0x9E3779B97F4A7C15ull;
    return (unsigned)(z >> 56);
}

/* Record one part's reply frame in its slot. */
static void part_done(gw_req *r, const char *frame, size_t len)
{
    gw_slot *s = r->slot;
    gw_t *g = r->g;
    gw_client *c = s->c;
    if (r->ryw) c->ryw_inflight--;
    c->reply_avg = (c->reply_avg * 7 + len) / 8;
    if (s->kind == M_ONE && s->pending == 1 && s == c->head && !c->closing) {
        /* first in line: straight to the output, no copy in the slot */
        if (len && frame[0] == '-') g->errors++;
        buf_append(&c->out, frame, len);
    } else if (len && frame[0] == '-') {
        g->errors++;
        if (s->kind == M_ONE) buf_append(&s->reply, frame, len);
        else if (!s->err) s->err = cairn_strndup(frame, len);
    } else if (s->kind == M_ONE) {
        buf_append(&s->reply, frame, len);
        s->held += len; /* waits behind an unanswered slot */
        c->held += len;
    } else {
        resp_value *v = NULL;
        size_t used;
        if (resp_read_value(frame, len, &v, &used) < 0) {
            if (!s->err) s->err = cairn_strndup("-ERR cairn: malformed reply from a node\r\n", 41);
        } else if (s->kind == M_MGET && v->type == RESP_ARRAY && v->n == r->npos) {
            for (size_t i = 0; i < v->n; i++) {
                s->vals[r->pos[i]] = v->elem[i];
                v->elem[i] = NULL;
            }
        } else if (s->kind == M_SUM && v->type == RESP_INT) {
            s->sum += v->i;
        } else if (s->kind == M_KEYS && v->type == RESP_ARRAY) {
            for (size_t i = 0; i < v->n; i++)
                if (v->elem[i] && v->elem[i]->type == RESP_BULK) {
                    reply_bulk(&s->acc, v->elem[i]->s, v->elem[i]->len);
                    s->acc_n++;
                }
        } else if (s->kind == M_SCAN && v->type == RESP_ARRAY && v->n == 2 && v->elem[0]->type == RESP_BULK) {
            char tmp[32];
            snprintf(tmp, sizeof(tmp), "%.*s", (int)(v->elem[0]->len < 30 ? v->elem[0]->len : 30), v->elem[0]->s);
            uint64_t next = strtoull(tmp, NULL, 10), cursor = 0;
            if (s->scan_from >= 0 && (unsigned)s->scan_from != scan_tag(r->node_id)) {
                /* Another node answered (a retry after a failover): its
                 * keys are real, its cursor meaningless; scan the shard
                 * again from its start (tag 1, cursor 0: not the end). */
                cursor = (uint64_t)1 << SCAN_TAG_SHIFT | s->scan_idx;
            } else if (next >> (64 - SCAN_NODE_SHIFT)) {
                if (!s->err) s->err = cairn_strndup("-ERR cairn: a node's SCAN cursor is too large\r\n", 47);
            } else if (next != 0) {
                cursor = next << SCAN_NODE_SHIFT | (uint64_t)scan_tag(r->node_id) << SCAN_TAG_SHIFT | s->scan_idx;
            } else if (s->scan_idx + 1 < g->nshards) {
                cursor = s->scan_idx + 1;
            }
            reply_array(&s->reply, 2);
            reply_bulk_u64(&s->reply, cursor);
            reply_array(&s->reply, v->elem[1]->n);
            for (size_t i = 0; i < v->elem[1]->n; i++) {
                resp_value *k = v->elem[1]->elem[i];
                reply_bulk(&s->reply, k->s, k->len);
            }
        } else if (s->kind == M_RANDOM && (v->type == RESP_BULK || v->type == RESP_NIL)) {
            if (v->type == RESP_BULK) {
                s->vals = cairn_realloc(s->vals, (s->nvals + 1) * sizeof(*s->vals));
                s->vals[s->nvals++] = v;
                v = NULL;
            }
        } else if (s->kind == M_OK && v->type == RESP_STRING) {
            /* +OK */
        } else if (!s->err) {
            s->err = cairn_strndup("-ERR cairn: unexpected reply from a node\r\n", 42);
        }
        resp_value_free(v);
    }
    if (--s->pending == 0) slot_finish(s);
}

static void req_free(gw_req *r)
{
    gw_t *g = r->g;
    if (r->bytes != r->inline_bytes) cairn_free(r->bytes);
    cairn_free(r->pos);
    if (g->nfree_reqs < POOL_MAX) {
        r->next_retry = g->free_reqs;
        g->free_reqs = r;
        g->nfree_reqs++;
    } else {
        cairn_free(r);
    }
}

static void part_fail(gw_req *r, const char *msg)
{
    char line[512];
    int l = snprintf(line, sizeof(line), "-%s\r\n", msg);
    part_done(r, line, (size_t)l);
    req_free(r);
}

bool gwc_refused_before_execution(const char *frame, size_t len)
{
    return (len > 12 && memcmp(frame, "-NOTPRIMARY ", 12) == 0) ||
           (len > 10 && memcmp(frame, "-TRYAGAIN ", 10) == 0) ||
           (len > 13 && memcmp(frame, "-CLUSTERDOWN ", 13) == 0);
}

/* The retry queue is FIFO and is sent whole, in order, once its head is
 * due: a client's requests to a shard keep their order across retries (and
 * while a client has requests queued there, its new ones queue behind
 * them: see send_or_queue). */
static void retry_enqueue(gw_req *r, int64_t at)
{
    gw_t *g = r->g;
    r->retry_at_ms = at;
    r->next_retry = NULL;
    if (g->retry_tail) g->retry_tail->next_retry = r;
    else g->retry_head = r;
    g->retry_tail = r;
    r->slot->c->retrying++;
}

static void schedule_retry(gw_req *r)
{
    gw_t *g = r->g;
    int64_t now = gw_now_ms(g);
    if (now >= r->deadline_ms) {
        part_fail(r, "CLUSTERDOWN cairn: no primary answered within retry-ms");
        return;
    }
    r->attempts++;
    g->retried++;
    int64_t backoff = r->attempts * 10 > 200 ? 200 : r->attempts * 10;
    retry_enqueue(r, now + backoff);
    gw_topology_refresh_soon(g);
}

/* ---- read-your-writes ----
 *
 * For a client that may read from replicas, each write is followed on the
 * same connection by CAIRN LSN, whose reply (the primary's log position
 * after the write) is kept per shard; a replica read is then sent as
 * CAIRN AFTER <lsn> <read>, which the replica runs only once it has applied
 * that much of the log (else TRYAGAIN, and the read goes to the primary).
 * While one of the client's writes is unanswered (a pipeline: SET then
 * GET in one packet) its LSN is not known yet, and its reads go to the
 * primary.  Clients reading from primaries pay nothing. */

#define RYW_MAX_SHARD 4096

static const char LSN_REQ[] = "*2\r\n$5\r\nCAIRN\r\n$3\r\nLSN\r\n";

static void ryw_track(gw_req *r)
{
    size_t len = r->len + sizeof(LSN_REQ) - 1;
    if (r->bytes != r->inline_bytes) {
        r->bytes = cairn_realloc(r->bytes, len);
    } else if (len > REQ_INLINE) {
        r->bytes = cairn_malloc(len);
        memcpy(r->bytes, r->inline_bytes, r->len);
    }
    memcpy(r->bytes + r->len, LSN_REQ, sizeof(LSN_REQ) - 1);
    r->len += sizeof(LSN_REQ) - 1;
    r->nframes = (r->nframes ? r->nframes : 1) + 1;
    r->ryw = true;
}

/* Record the LSN frame that ends the span; returns the span's length
 * without it. */
static size_t ryw_note(gw_req *r, const char *span, size_t len, size_t nframes)
{
    size_t off = 0, flen;
    for (size_t i = 0; i + 1 < nframes; i++) {
        if (resp_scan_reply(span + off, len - off, RESP_DEPTH_MAX, &flen) != 0) return len;
        off += flen;
    }
    gw_client *c = r->slot->c;
    int64_t lsn;
    if (len - off > 3 && span[off] == ':' && str_to_i64(span + off + 1, len - off - 3, &lsn) && lsn > 0 &&
        r->shard_id < RYW_MAX_SHARD) {
        if (r->shard_id >= c->ryw_cap) {
            size_t cap = r->shard_id + 16;
            c->ryw_lsn = cairn_realloc(c->ryw_lsn, cap * sizeof(*c->ryw_lsn));
            memset(c->ryw_lsn + c->ryw_cap, 0, (cap - c->ryw_cap) * sizeof(*c->ryw_lsn));
            c->ryw_cap = cap;
        }
        if ((uint64_t)lsn > c->ryw_lsn[r->shard_id]) c->ryw_lsn[r->shard_id] = (uint64_t)lsn;
    }
    return off;
}

/* The bytes of read r wrapped in CAIRN AFTER, into b; false when the
 * client has no write to wait for on that shard. */
static bool ryw_wrap(gw_req *r, cairn_buf *b)
{
    gw_client *c = r->slot->c;
    uint64_t lsn = r->shard_id < c->ryw_cap ? c->ryw_lsn[r->shard_id] : 0;
    const char *nl = memchr(r->bytes, '\n', r->len);
    int64_t argc;
    if (!lsn || r->bytes[0] != '*' || !nl || !str_to_i64(r->bytes + 1, (size_t)(nl - 1 - r->bytes - 1), &argc))
        return false;
    char num[24];
    size_t nl_len = u64_to_str(num, lsn);
    buf_append(b, "*", 1);
    buf_append_u64(b, (uint64_t)argc + 3);
    buf_append_str(b, "\r\n$5\r\nCAIRN\r\n$5\r\nAFTER\r\n$");
    buf_append_u64(b, nl_len);
    buf_append(b, "\r\n", 2);
    buf_append(b, num, nl_len);
    buf_append(b, "\r\n", 2);
    buf_append(b, nl + 1, r->len - (size_t)(nl + 1 - r->bytes));
    return true;
}

static void on_backend_reply(void *arg, const char *frame, size_t len)
{
    gw_req *r = arg;
    gw_t *g = r->g;
    gw_node *n = gw_node_by_id(g, r->node_id);
    gw_shard *s = NULL;
    for (size_t i = 0; i < g->nshards; i++)
        if (g->shards[i].id == r->shard_id) s = &g->shards[i];
    int64_t lat = gw_now_us(g) - r->start_us;
    if (!frame) {
        if (n) gw_node_done(g, s, r->member_idx, n, lat, false);
        if (len == RCONN_UNSENT || !r->write) {
            /* never written, or a read: safe to send again */
            schedule_retry(r);
        } else {
            g->failed_unknown++;
            part_fail(r, "ERR cairn: the connection to the primary broke after the write was "
                         "sent; it may or may not have been applied");
        }
        return;
    }
    if (n) gw_node_done(g, s, r->member_idx, n, lat, true);
    bool refused = false;
    size_t nframes = r->nframes ? r->nframes : 1;
    if (r->ryw) {
        len = ryw_note(r, frame, len, nframes);
        nframes--;
    }
    if (nframes > 1) gw_tx_block_reply(frame, len, nframes, &frame, &len, &refused);
    else refused = gwc_refused_before_execution(frame, len);
    if (refused && gw_now_ms(g) < r->deadline_ms) {
        if (r->ro) r->to_primary = true; /* e.g. a replica behind the client's writes */
        schedule_retry(r);
        return;
    }
    part_done(r, frame, len);
    req_free(r);
}

static void send_req(gw_req *r)
{
    gw_t *g = r->g;
    gw_shard *s = NULL;
    for (size_t i = 0; i < g->nshards; i++)
        if (g->shards[i].id == r->shard_id) s = &g->shards[i];
    if (!s) {
        schedule_retry(r);
        return;
    }
    int rp = r->slot->c->read_policy;
    gw_node *n = gw_pick(g, s, r->write || r->to_primary, rp, &r->member_idx);
    if (!n) {
        schedule_retry(r);
        return;
    }
    r->node_id = n->id;
    r->ro = !r->write && n->id != s->primary;
    r->start_us = gw_now_us(g);
    if (g->policy->on_start && s->pstate && n->id == s->members[r->member_idx])
        g->policy->on_start(s->pstate, r->member_idx);
    /* One connection per client and node keeps a client's pipeline in
     * order (requests on one connection execute in order). */
    cairn_buf wrapped;
    buf_init(&wrapped);
    bool wrap = r->ro && r->slot->c->ryw && r->nframes <= 1 && ryw_wrap(r, &wrapped);
    if (gw_node_send(g, n, r->ro, r->proto, r->slot->c->id, wrap ? wrapped.data : r->bytes, wrap ? wrapped.len : r->len,
                     r->nframes, on_backend_reply, r) < 0)
        part_fail(r, "ERR cairn: too many requests queued for a node");
    buf_close(&wrapped);
}

void gw_retry_tick(gw_t *g)
{
    if (!g->retry_head || g->retry_head->retry_at_ms > gw_now_ms(g)) return;
    gw_req *all = g->retry_head;
    g->retry_head = g->retry_tail = NULL;
    while (all) {
        gw_req *r = all;
        all = r->next_retry;
        r->slot->c->retrying--;
        send_req(r);
    }
}

/* New requests of a client that has requests awaiting a retry go behind
 * them, so its requests reach each node in the order it sent them. */
void gwc_send_or_queue(gw_req *r)
{
    gw_client *c = r->slot->c;
    if (r->write && c->ryw && c->read_policy != READ_PRIMARY) {
        ryw_track(r);
        c->ryw_inflight++;
    } else if (!r->write && c->ryw && c->ryw_inflight) {
        /* A write of this client is still unanswered, so its LSN is not
         * known yet: a replica could miss it.  The primary cannot (it runs
         * the client's requests in order on one connection). */
        r->to_primary = true;
    }
    if (r->slot->c->retrying) retry_enqueue(r, gw_now_ms(r->g));
    else send_req(r);
}

void gw_retry_drop_all(gw_t *g)
{
    while (g->retry_head) {
        gw_req *r = g->retry_head;
        g->retry_head = r->next_retry;
        r->slot->c->retrying--;
        part_fail(r, "ERR cairn gateway is shutting down");
    }
    g->retry_tail = NULL;
}

/* ---- building requests ---- */

void gwc_encode(cairn_buf *b, size_t argc, const resp_arg *argv)
{
    buf_append(b, "*", 1);
    buf_append_u64(b, argc);
    buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < argc; i++) {
        buf_append(b, "$", 1);
        buf_append_u64(b, argv[i].len);
        buf_append(b, "\r\n", 2);
        buf_append(b, argv[i].p, argv[i].len);
        buf_append(b, "\r\n", 2);
    }
}

gw_req *gwc_req_new(gw_client *c, gw_slot *s, uint32_t shard, bool write, const char *bytes, size_t len)
{
    gw_t *g = c->g;
    gw_req *r = g->free_reqs;
    if (r) {
        g->free_reqs = r->next_retry;
        g->nfree_reqs--;
        memset(r, 0, offsetof(gw_req, inline_bytes));
    } else {
        r = cairn_malloc(sizeof(*r));
        memset(r, 0, offsetof(gw_req, inline_bytes));
    }
    r->g = g;
    r->slot = s;
    r->shard_id = shard;
    r->write = write;
    r->proto = s->proto;
    r->bytes = len <= REQ_INLINE ? r->inline_bytes : cairn_malloc(len);
    memcpy(r->bytes, bytes, len);
    r->len = len;
    r->deadline_ms = gw_now_ms(c->g) + c->g->cfg.retry_ms;
    s->pending++;
    return r;
}

static void local_reply(gw_client *c, cairn_buf *b)
{
    gw_slot *s = slot_new(c, M_ONE);
    buf_append(&s->reply, b->data, b->len);
    s->done = true;
}

gw_slot *gwc_slot_new(gw_client *c) { return slot_new(c, M_ONE); }

void gwc_slot_reply(gw_slot *s, const char *frame, size_t len)
{
    buf_append(&s->reply, frame, len);
    s->done = true;
    flush(s->c);
}

void gwc_local_raw(gw_client *c, const char *bytes, size_t len)
{
    gw_slot *s = slot_new(c, M_ONE);
    buf_append(&s->reply, bytes, len);
    s->done = true;
}

void gwc_local_error(gw_client *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    cairn_buf b;
    buf_init(&b);
    reply_error(&b, msg);
    local_reply(c, &b);
    buf_close(&b);
}

/* Split a multi-key command per shard.  `step` is 1 (keys) or 2 (key
 * value pairs); kind says how to merge. */
static void route_split(gw_client *c, size_t argc, const resp_arg *argv, size_t step, enum merge kind,
                        bool write)
{
    gw_t *g = c->g;
    size_t nkeys = (argc - 1) / step;
    gw_slot *s = slot_new(c, kind);
    if (kind == M_MGET) {
        s->vals = cairn_calloc(nkeys, sizeof(*s->vals));
        s->nvals = nkeys;
    }
    uint32_t *shard_of = cairn_malloc(nkeys * sizeof(*shard_of));
    for (size_t k = 0; k < nkeys; k++) {
        gw_shard *sh = gw_shard_for_key(g, argv[1 + k * step].p, argv[1 + k * step].len);
        shard_of[k] = sh ? sh->id : UINT32_MAX;
    }
    if (shard_of[0] == UINT32_MAX) {
        cairn_free(shard_of);
        s->kind = M_ONE;
        reply_error(&s->reply, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
        s->done = true;
        return;
    }
    resp_arg *sub = cairn_malloc(argc * sizeof(*sub));
    bool *taken = cairn_calloc(nkeys, 1);
    for (size_t k = 0; k < nkeys; k++) {
        if (taken[k]) continue;
        size_t n = 0, npos = 0;
        size_t *pos = cairn_malloc(nkeys * sizeof(*pos));
        sub[n++] = argv[0];
        for (size_t j = k; j < nkeys; j++) {
            if (taken[j] || shard_of[j] != shard_of[k]) continue;
            taken[j] = true;
            for (size_t t = 0; t < step; t++) sub[n++] = argv[1 + j * step + t];
            pos[npos++] = j;
        }
        cairn_buf b;
        buf_init(&b);
        gwc_encode(&b, n, sub);
        gw_req *r = gwc_req_new(c, s, shard_of[k], write, b.data, b.len);
        buf_close(&b);
        r->pos = pos;
        r->npos = npos;
        gwc_send_or_queue(r);
    }
    cairn_free(taken);
    cairn_free(sub);
    cairn_free(shard_of);
}

static void route_all(gw_client *c, const char *raw, size_t len, enum merge kind, bool write)
{
    gw_t *g = c->g;
    if (g->nshards == 0) {
        gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
        return;
    }
    gw_slot *s = slot_new(c, kind);
    for (size_t i = 0; i < g->nshards; i++) gwc_send_or_queue(gwc_req_new(c, s, g->shards[i].id, write, raw, len));
}

static void route_scan(gw_client *c, size_t argc, const resp_arg *argv)
{
    gw_t *g = c->g;
    char tmp[32];
    uint64_t cursor = 0;
    if (argv[1].len >= sizeof(tmp)) {
        gwc_local_error(c, "ERR invalid cursor");
        return;
    }
    memcpy(tmp, argv[1].p, argv[1].len);
    tmp[argv[1].len] = '\0';
    char *end;
    cursor = strtoull(tmp, &end, 10);
    if (*end) {
        gwc_local_error(c, "ERR invalid cursor");
        return;
    }
    size_t idx = (size_t)(cursor & SCAN_SHARD_MASK);
    if (g->nshards == 0 || idx >= g->nshards) {
        if (g->nshards == 0) gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet");
        else gwc_local_error(c, "ERR invalid cursor");
        return;
    }
    gw_shard *sh = &g->shards[idx];
    uint64_t node_cursor = cursor >> SCAN_NODE_SHIFT;
    /* A node's cursor means nothing to another node (its own table and
     * hash seed): if the shard's primary changed, scan the shard again
     * from its start — keys may come twice, as SCAN allows, but none that
     * stayed is missed. */
    if (node_cursor && ((cursor >> SCAN_TAG_SHIFT) & 0xff) != scan_tag(sh->primary)) node_cursor = 0;
    char nc[24];
    resp_arg *sub = cairn_malloc(argc * sizeof(*sub));
    memcpy(sub, argv, argc * sizeof(*sub));
    sub[1] = (resp_arg){nc, u64_to_str(nc, node_cursor)};
    cairn_buf b;
    buf_init(&b);
    gwc_encode(&b, argc, sub);
    cairn_free(sub);
    gw_slot *s = slot_new(c, M_SCAN);
    s->scan_idx = idx;
    s->scan_from = node_cursor ? (int)scan_tag(sh->primary) : -1;
    gw_req *r = gwc_req_new(c, s, sh->id, false, b.data, b.len);
    r->to_primary = true; /* one node per shard for the whole scan */
    gwc_send_or_queue(r);
    buf_close(&b);
}

/* INFO [section ...]: the gateway's own sections; no argument, "default",
 * "all" or "everything" give them all, an unknown section nothing (as
 * Redis does). */
static void info_reply(gw_client *c, size_t argc, const resp_arg *argv)
{
    static const char *const sections[] = {"server", "clients", "memory", "stats", "cluster"};
    enum { NSEC = sizeof(sections) / sizeof(*sections) };
    bool want[NSEC];
    bool all = argc < 2;
    for (size_t i = 1; i < argc; i++)
        if (arg_eq(&argv[i], "default") || arg_eq(&argv[i], "all") || arg_eq(&argv[i], "everything"))
            all = true;
    for (size_t k = 0; k < NSEC; k++) {
        want[k] = all;
        for (size_t i = 1; i < argc && !want[k]; i++) want[k] = arg_eq(&argv[i], sections[k]);
    }
    gw_t *g = c->g;
    cairn_buf b;
    buf_init(&b);
    char line[1024];
    int l;
    size_t waiting = 0;
    for (gw_req *r = g->retry_head; r; r = r->next_retry) waiting++;
#define SECTION(k, ...)                                     \
    do {                                                    \
        if (!want[k]) break;                                \
        if (b.len) buf_append(&b, "\r\n", 2);             \
        l = snprintf(line, sizeof(line), __VA_ARGS__);      \
        buf_append(&b, line, (size_t)l);                    \
    } while (0)
    SECTION(0,
            "# Server\r\nredis_version:7.0.15\r\ncairn_version:0.1.0\r\nrole:gateway\r\n"
            "tcp_port:%lld\r\nuptime_in_seconds:%lld\r\nread_policy:%s\r\nread_your_writes:%s\r\n"
            "policy:%s\r\n",
            (long long)g->cfg.port, (long long)((clock_ms() - g->start_ms) / 1000),
            (const char *[]){"primary", "replica", "prefer-replica", "any"}[g->read_policy],
            g->cfg.read_your_writes ? "yes" : "no", g->policy->name);
    SECTION(1, "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%lld\r\n", g->nclients,
            (long long)g->cfg.maxclients);
    SECTION(2, "# Memory\r\nused_memory:%zu\r\nrecycled_slots:%zu\r\nrecycled_requests:%zu\r\n",
            cairn_mem_used(), g->nfree_slots, g->nfree_reqs);
    SECTION(3,
            "# Stats\r\ntotal_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%" PRIu64
            "\r\ncross_shard_requests:%" PRIu64 "\r\nretried_requests:%" PRIu64
            "\r\nwrites_with_unknown_outcome:%" PRIu64 "\r\nerror_replies:%" PRIu64
            "\r\nrequests_awaiting_retry:%zu\r\n",
            g->connections, g->commands, g->cross_shard, g->retried, g->failed_unknown, g->errors, waiting);
#undef SECTION
    if (want[4]) {
        if (b.len) buf_append(&b, "\r\n", 2);
        buf_append_str(&b, "# Cluster\r\n");
        gw_info_cluster(g, &b);
    }
    cairn_buf r;
    buf_init(&r);
    reply_verbatim(&r, c->proto, b.data ? b.data : "", b.len); /* Redis 7.0: =len txt: in RESP3 */
    local_reply(c, &r);
    buf_close(&r);
    buf_close(&b);
}

static int parse_read_policy(const resp_arg *a)
{
    static const char *names[] = {"primary", "replica", "prefer-replica", "any"};
    for (int i = 0; i < 4; i++)
        if (arg_eq(a, names[i])) return i;
    return -1;
}

/* ---- authentication ----
 *
 * Redis 7.0's default user under `requirepass` (checked against
 * redis-server 7.0.15).  A client starts authenticated when no password is
 * set.  Until it is, every command but AUTH, HELLO and QUIT (the no-auth
 * commands of the node's table) answers -NOAUTH, after the unknown-command
 * and arity checks, as Redis orders them.  AUTH and HELLO answer locally,
 * so their effect applies at parse time, in request order: a request
 * pipelined before AUTH in the same read is still refused.  A failed AUTH
 * leaves an authenticated client authenticated.  The gateway's own
 * connections to the nodes never send AUTH.  Inside MULTI, AUTH and HELLO
 * are refused like the gateway's other local commands (gw_tx.c); Redis
 * queues them. */

static const char WRONGPASS[] = "WRONGPASS invalid username-password pair or user is disabled.";

/* Answers (and returns true) when an unauthenticated client's request must
 * be refused before it runs. */
static bool auth_refused(gw_client *c, size_t argc, const resp_arg *argv)
{
    const cmd_def *d = cmd_lookup(argv[0].p, argv[0].len);
    if (!d) {
        gwc_reply_unknown(c, argc, argv);
    } else if ((d->arity > 0 && (int64_t)argc != d->arity) || (int64_t)argc < -(int64_t)d->arity) {
        gwc_local_error(c, "ERR wrong number of arguments for '%s' command", d->name);
    } else if (d->flags & CMD_NOAUTH) {
        return false;
    } else if (strcmp(d->name, "exec") == 0) { /* Redis's rejectCommand for EXEC */
        gwc_local_error(c, "EXECABORT Transaction discarded because of: NOAUTH Authentication required.");
    } else {
        gwc_local_error(c, "NOAUTH Authentication required.");
    }
    return true;
}

/* The default user's credentials (user names are case-sensitive); with no
 * requirepass any password will do.  Authenticates c on success. */
static bool auth_check(gw_client *c, const resp_arg *user, const resp_arg *pass)
{
    const gw_config *cfg = &c->g->cfg;
    bool ok = user->len == 7 && memcmp(user->p, "default", 7) == 0;
    if (gw_config_auth_required(cfg) && !gw_config_password_ok(cfg, pass->p, pass->len)) ok = false;
    if (ok) c->authed = true;
    return ok;
}

/* AUTH [username] password */
static void auth_cmd(gw_client *c, cairn_buf *b, size_t argc, const resp_arg *argv)
{
    static const resp_arg def = {"default", 7};
    if (argc > 3) reply_error(b, "ERR syntax error");
    else if (argc == 2 && !gw_config_auth_required(&c->g->cfg))
        reply_error(b, "ERR AUTH <password> called without any password configured for the default "
                       "user. Are you sure your configuration is correct?");
    else if (auth_check(c, argc == 2 ? &def : &argv[1], &argv[argc - 1])) reply_ok(b);
    else reply_error(b, WRONGPASS);
}

/* HELLO [protover [AUTH username password] [SETNAME clientname]], in Redis
 * 7.0's order: the version, then each option as it comes (AUTH takes
 * effect at once, even if a later option fails), then the NOAUTH check,
 * then the name, then the switch to the protocol asked for (the map is
 * already in it).  The client's later requests travel on the node
 * connections of that protocol (gw_node_send); its earlier ones have all
 * answered by then (needs_drain). */
static void hello_cmd(gw_client *c, cairn_buf *b, size_t argc, const resp_arg *argv)
{
    size_t j = 1;
    int64_t ver = 0;
    if (argc >= 2) {
        if (!str_to_i64(argv[1].p, argv[1].len, &ver)) {
            reply_error(b, "ERR Protocol version is not an integer or out of range");
            return;
        }
        if (ver < 2 || ver > 3) {
            reply_error(b, "NOPROTO unsupported protocol version");
            return;
        }
        j = 2;
    }
    const resp_arg *name = NULL;
    for (; j < argc; j++) {
        size_t more = argc - 1 - j;
        if (arg_eq(&argv[j], "auth") && more >= 2) {
            if (!auth_check(c, &argv[j + 1], &argv[j + 2])) {
                reply_error(b, WRONGPASS);
                return;
            }
            j += 2;
        } else if (arg_eq(&argv[j], "setname") && more >= 1) {
            name = &argv[++j];
            for (size_t i = 0; i < name->len; i++)
                if (name->p[i] < '!' || name->p[i] > '~') {
                    reply_error(b, "ERR Client names cannot contain spaces, newlines or special characters.");
                    return;
                }
        } else {
            int n = (int)(argv[j].len > 128 ? 128 : argv[j].len);
            reply_errorf(b, "ERR Syntax error in HELLO option '%.*s'", n, argv[j].p);
            return;
        }
    }
    if (!c->authed) {
        reply_error(b, "NOAUTH HELLO must be called with the client already authenticated, otherwise the "
                       "HELLO AUTH <user> <pass> option can be used to authenticate the client and select "
                       "the RESP protocol version at the same time");
        return;
    }
    if (name) {
        cairn_free(c->name);
        c->name = name->len ? cairn_strndup(name->p, name->len) : NULL;
    }
    if (ver) c->proto = (int)ver;
    reply_map(b, c->proto, 7);
    reply_bulk_str(b, "server");
    reply_bulk_str(b, "redis");
    reply_bulk_str(b, "version");
    reply_bulk_str(b, "7.0.15");
    reply_bulk_str(b, "proto");
    reply_int(b, c->proto);
    reply_bulk_str(b, "id");
    reply_int(b, (int64_t)c->id);
    reply_bulk_str(b, "mode");
    reply_bulk_str(b, "cluster-proxy");
    reply_bulk_str(b, "role");
    reply_bulk_str(b, "master");
    reply_bulk_str(b, "modules");
    reply_array(b, 0);
}

/* CLIENT KILL addr | CLIENT KILL [ID id] [ADDR addr] [TYPE t] [USER u]
 * [SKIPME yes|no] ..., as Redis 7.0 answers them, over the gateway's own
 * clients (all of type normal, user default). */
static void client_kill(gw_client *c, cairn_buf *b, size_t argc, const resp_arg *argv)
{
    const resp_arg *addr = NULL;
    int64_t id = 0;
    bool skipme = true, none = false, old_style = argc == 3;
    if (old_style) {
        addr = &argv[2];
        skipme = false;
    } else if (argc < 4 || argc % 2) {
        reply_error(b, "ERR syntax error");
        return;
    }
    for (size_t i = 2; !old_style && i + 1 < argc; i += 2) {
        const resp_arg *k = &argv[i], *v = &argv[i + 1];
        if (arg_eq(k, "id")) {
            if (!str_to_i64(v->p, v->len, &id) || id <= 0) {
                reply_error(b, "ERR client-id should be greater than 0");
                return;
            }
        } else if (arg_eq(k, "addr")) {
            addr = v;
        } else if (arg_eq(k, "skipme")) {
            if (arg_eq(v, "yes")) skipme = true;
            else if (arg_eq(v, "no")) skipme = false;
            else {
                reply_error(b, "ERR syntax error");
                return;
            }
        } else if (arg_eq(k, "type")) {
            if (arg_eq(v, "master") || arg_eq(v, "replica") || arg_eq(v, "slave") || arg_eq(v, "pubsub")) {
                none = true;
            } else if (!arg_eq(v, "normal")) {
                reply_errorf(b, "ERR Unknown client type '%.*s'", (int)v->len, v->p);
                return;
            }
        } else if (arg_eq(k, "user")) {
            if (!(v->len == 7 && memcmp(v->p, "default", 7) == 0)) {
                reply_errorf(b, "ERR No such user '%.*s'", (int)v->len, v->p);
                return;
            }
        } else {
            reply_error(b, "ERR syntax error");
            return;
        }
    }
    int64_t killed = 0;
    for (gw_client *x = none ? NULL : c->g->clients, *next; x; x = next) {
        next = x->next;
        if (id > 0 && x->id != (uint64_t)id) continue;
        if (addr && !(strlen(x->addr) == addr->len && memcmp(x->addr, addr->p, addr->len) == 0)) continue;
        if (x == c && skipme) continue;
        killed++;
        if (x == c) c->close_after = true; /* after this reply */
        else gwc_close(x);
    }
    if (!old_style) reply_int(b, killed);
    else if (killed) reply_ok(b);
    else reply_error(b, "ERR No such client");
}

/* The gateway's own commands; returns false if `name` is not one. */
static bool route_local(gw_client *c, const cmd_def *d, size_t argc, const resp_arg *argv)
{
    cairn_buf b;
    buf_init(&b);
    const char *name = d ? d->name : "";
    bool handled = true;
    if (strcmp(name, "ping") == 0) {
        if (argc > 2) reply_error(&b, "ERR wrong number of arguments for 'ping' command");
        else if (argc == 2) reply_bulk(&b, argv[1].p, argv[1].len);
        else reply_simple(&b, "PONG");
    } else if (strcmp(name, "echo") == 0) {
        reply_bulk(&b, argv[1].p, argv[1].len);
    } else if (strcmp(name, "quit") == 0) {
        reply_ok(&b);
        c->close_after = true; /* close once this and earlier replies are out */
    } else if (strcmp(name, "select") == 0) {
        int64_t db;
        if (!str_to_i64(argv[1].p, argv[1].len, &db)) reply_error(&b, "ERR value is not an integer or out of range");
        else if (db != 0) reply_error(&b, "ERR DB index is out of range");
        else reply_ok(&b);
    } else if (strcmp(name, "hello") == 0) {
        hello_cmd(c, &b, argc, argv);
    } else if (strcmp(name, "auth") == 0) {
        auth_cmd(c, &b, argc, argv);
    } else if (strcmp(name, "client") == 0) {
        /* Redis's subcommand arities: ID GETNAME INFO take none, SETNAME
         * one, SETINFO two; LIST takes options (TYPE / ID: ignored here). */
        static const struct {
            const char *sub;
            size_t argc;
        } arity[] = {{"id", 2}, {"getname", 2}, {"info", 2}, {"setname", 3}, {"setinfo", 4}};
        bool bad_arity = false;
        for (size_t i = 0; i < sizeof(arity) / sizeof(*arity); i++)
            if (arg_eq(&argv[1], arity[i].sub) && argc != arity[i].argc) {
                reply_errorf(&b, "ERR wrong number of arguments for 'client|%s' command", arity[i].sub);
                bad_arity = true;
            }
        if (bad_arity) {
            /* answered */
        } else if (arg_eq(&argv[1], "id")) {
            reply_int(&b, (int64_t)c->id);
        } else if (arg_eq(&argv[1], "setname")) {
            bool valid = true;
            for (size_t i = 0; i < argv[2].len; i++)
                if (argv[2].p[i] < '!' || argv[2].p[i] > '~') valid = false;
            if (!valid) {
                reply_error(&b, "ERR Client names cannot contain spaces, newlines or special characters.");
            } else {
                cairn_free(c->name); /* an empty name clears it */
                c->name = argv[2].len ? cairn_strndup(argv[2].p, argv[2].len) : NULL;
                reply_ok(&b);
            }
        } else if (arg_eq(&argv[1], "getname")) {
            if (c->name && c->name[0]) reply_bulk_str(&b, c->name);
            else reply_null(&b, c->proto);
        } else if (arg_eq(&argv[1], "setinfo")) {
            reply_ok(&b);
        } else if (arg_eq(&argv[1], "list") || arg_eq(&argv[1], "info")) {
            char line[256];
            cairn_buf l;
            buf_init(&l);
            for (gw_client *x = c->g->clients; x; x = x->next) {
                if (arg_eq(&argv[1], "info") && x != c) continue;
                int n = snprintf(line, sizeof(line), "id=%" PRIu64 " addr=%s name=%s age=%lld pending=%zu\n",
                                 x->id, x->addr, x->name ? x->name : "",
                                 (long long)((clock_ms() - x->ctime_ms) / 1000), x->nslots);
                buf_append(&l, line, (size_t)n);
            }
            reply_verbatim(&b, c->proto, l.data ? l.data : "", l.len);
            buf_close(&l);
        } else if (arg_eq(&argv[1], "kill")) {
            client_kill(c, &b, argc, argv);
        } else {
            reply_errorf(&b, "ERR unknown subcommand '%.*s'. Try CLIENT HELP.", (int)argv[1].len, argv[1].p);
        }
    } else if (strcmp(name, "info") == 0) {
        buf_close(&b);
        info_reply(c, argc, argv);
        return true;
    } else if (strcmp(name, "config") == 0) {
        if (arg_eq(&argv[1], "get") && argc < 3) {
            reply_error(&b, "ERR wrong number of arguments for 'config|get' command");
        } else if (arg_eq(&argv[1], "get")) {
            reply_map(&b, c->proto, 0);
        } else if (arg_eq(&argv[1], "set") && (argc < 4 || argc % 2)) {
            reply_error(&b, "ERR wrong number of arguments for 'config|set' command");
        } else if (arg_eq(&argv[1], "resetstat") && argc == 2) {
            gw_t *g = c->g;
            g->commands = g->connections = g->cross_shard = g->retried = g->failed_unknown = g->errors = 0;
            reply_ok(&b);
        } else if (arg_eq(&argv[1], "set") || arg_eq(&argv[1], "rewrite")) {
            reply_error(&b, "ERR cairn gateway: configure the gateway with its flags or file");
        } else {
            reply_errorf(&b, "ERR unknown subcommand '%.*s'. Try CONFIG HELP.", (int)argv[1].len, argv[1].p);
        }
    } else if (strcmp(name, "cairn") == 0) {
        int rp;
        if (arg_eq(&argv[1], "readpolicy") && argc == 3 && (rp = parse_read_policy(&argv[2])) >= 0) {
            c->read_policy = rp;
            reply_ok(&b);
        } else if (arg_eq(&argv[1], "readpolicy") && argc == 2) {
            reply_bulk_str(&b, (const char *[]){"primary", "replica", "prefer-replica", "any"}[c->read_policy]);
        } else if (arg_eq(&argv[1], "readyourwrites") && argc == 3 &&
                   (arg_eq(&argv[2], "on") || arg_eq(&argv[2], "off"))) {
            c->ryw = arg_eq(&argv[2], "on");
            reply_ok(&b);
        } else if (arg_eq(&argv[1], "readyourwrites") && argc == 2) {
            reply_bulk_str(&b, c->ryw ? "on" : "off");
        } else {
            reply_error(&b, "ERR usage: CAIRN READPOLICY [primary|replica|prefer-replica|any] | "
                            "CAIRN READYOURWRITES [on|off]");
        }
    } else if (strcmp(name, "save") == 0 || strcmp(name, "bgsave") == 0 ||
               strcmp(name, "shutdown") == 0 || strcmp(name, "lastsave") == 0) {
        reply_errorf(&b, "ERR cairn gateway: %s is a node command; send it to a node", name);
    } else {
        handled = false;
    }
    if (handled) local_reply(c, &b);
    buf_close(&b);
    return handled;
}

void gwc_reply_unknown(gw_client *c, size_t argc, const resp_arg *argv)
{
    char args[512];
    size_t al = 0;
    args[0] = '\0';
    for (size_t i = 1; i < argc && al < 128; i++) {
        int room = 128 - (int)al;
        int w = snprintf(args + al, sizeof(args) - al, "'%.*s' ",
                         (int)(argv[i].len < (size_t)room ? argv[i].len : (size_t)room), argv[i].p);
        if (w < 0) break;
        al += (size_t)w;
        if (al >= sizeof(args)) al = sizeof(args) - 1;
    }
    gwc_local_error(c, "ERR unknown command '%.*s', with args beginning with: %s",
                (int)(argv[0].len > 128 ? 128 : argv[0].len), argv[0].p, args);
}

/* How each command of the node's table is routed, worked out once (the
 * hot path then costs one table lookup, not a chain of name compares). */
enum route_kind { R_KEYED, R_LOCAL, R_MGET, R_SPLIT_SUM, R_MSET, R_ALL_SUM, R_ALL_KEYS, R_ALL_OK,
                  R_SCAN, R_RANDOM };

static enum route_kind route_kind_of(const cmd_def *d)
{
    static const struct {
        const char *name;
        enum route_kind kind;
    } special[] = {{"ping", R_LOCAL},       {"echo", R_LOCAL},      {"quit", R_LOCAL},
                   {"select", R_LOCAL},     {"hello", R_LOCAL},     {"client", R_LOCAL},
                   {"info", R_LOCAL},       {"config", R_LOCAL},    {"cairn", R_LOCAL},
                   {"save", R_LOCAL},       {"bgsave", R_LOCAL},    {"shutdown", R_LOCAL},
                   {"lastsave", R_LOCAL},   {"auth", R_LOCAL},      {"mget", R_MGET},
                   {"del", R_SPLIT_SUM},    {"unlink", R_SPLIT_SUM}, {"exists", R_SPLIT_SUM},
                   {"mset", R_MSET},        {"dbsize", R_ALL_SUM},  {"keys", R_ALL_KEYS},
                   {"flushall", R_ALL_OK},  {"flushdb", R_ALL_OK},  {"scan", R_SCAN},
                   {"randomkey", R_RANDOM}};
    static uint8_t kinds[256]; /* R_KEYED (0) unless listed */
    static bool ready;
    size_t ncmds;
    const cmd_def *table = cmd_table(&ncmds);
    if (!ready) {
        ready = true;
        assert(ncmds <= sizeof(kinds));
        for (size_t i = 0; i < ncmds; i++)
            for (size_t j = 0; j < sizeof(special) / sizeof(*special); j++)
                if (strcmp(table[i].name, special[j].name) == 0) kinds[i] = (uint8_t)special[j].kind;
    }
    return (enum route_kind)kinds[d - table];
}

static void route(gw_client *c, size_t argc, const resp_arg *argv, const char *raw, size_t rawlen)
{
    gw_t *g = c->g;
    g->commands++;
    if (!c->authed && auth_refused(c, argc, argv)) return;
    if (gw_tx_route(c, argc, argv, raw, rawlen)) return;
    const cmd_def *d = cmd_lookup(argv[0].p, argv[0].len);
    if (!d) {
        gwc_reply_unknown(c, argc, argv);
        return;
    }
    if ((d->arity > 0 && (int64_t)argc != d->arity) || (int64_t)argc < -(int64_t)d->arity) {
        gwc_local_error(c, "ERR wrong number of arguments for '%s' command", d->name);
        return;
    }
    enum route_kind kind = route_kind_of(d);
    if (kind == R_LOCAL && route_local(c, d, argc, argv)) return;
    bool write = d->flags & CMD_WRITE;
    /* Re-encode inline requests; forward multibulk bytes as they came. */
    cairn_buf enc;
    buf_init(&enc);
    if (rawlen == 0 || raw[0] != '*') {
        gwc_encode(&enc, argc, argv);
        raw = enc.data;
        rawlen = enc.len;
    }
    const char *n = d->name;
    if (kind == R_MGET) route_split(c, argc, argv, 1, M_MGET, false);
    else if (kind == R_SPLIT_SUM) route_split(c, argc, argv, 1, M_SUM, write);
    else if (kind == R_MSET) {
        if (argc % 2 == 0) gwc_local_error(c, "ERR wrong number of arguments for 'mset' command");
        else route_split(c, argc, argv, 2, M_OK, true);
    } else if (kind == R_ALL_SUM) route_all(c, raw, rawlen, M_SUM, false);
    else if (kind == R_ALL_KEYS) route_all(c, raw, rawlen, M_KEYS, false);
    else if (kind == R_ALL_OK) route_all(c, raw, rawlen, M_OK, true);
    else if (kind == R_SCAN) route_scan(c, argc, argv);
    else if (kind == R_RANDOM) route_all(c, raw, rawlen, M_RANDOM, false);
    else if (d->first > 0) {
        /* Every key must live in one shard; else CROSSSHARD (atomic
         * multi-shard writes come with two-phase commit). */
        size_t last = d->last < 0 ? argc + (size_t)(long)d->last : (size_t)d->last;
        gw_shard *s = NULL;
        bool cross = false;
        for (size_t i = (size_t)d->first; i <= last && i < argc; i += (size_t)d->step) {
            gw_shard *k = gw_shard_for_key(g, argv[i].p, argv[i].len);
            if (s && k != s) cross = true;
            s = k;
        }
        if (cross) {
            g->cross_shard++;
            gwc_local_error(c, "CROSSSHARD the keys of this %s live in different shards (use {hash tags} "
                           "to keep them together)", n);
        } else if (!s) {
            gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
        } else {
            gw_slot *sl = slot_new(c, M_ONE);
            gwc_send_or_queue(gwc_req_new(c, sl, s->id, write, raw, rawlen));
        }
    } else {
        /* keyless (COMMAND, TIME, RANDOMKEY ...): any shard's primary */
        if (g->nshards == 0) {
            gwc_local_error(c, "CLUSTERDOWN cairn: no topology yet (is the manager reachable?)");
        } else {
            gw_slot *sl = slot_new(c, M_ONE);
            gwc_send_or_queue(gwc_req_new(c, sl, g->shards[0].id, write, raw, rawlen));
        }
    }
    buf_close(&enc);
}

/* ---- connection ---- */

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    gw_client *c = h->data;
    (void)sz;
    b->base = buf_reserve(&c->query, 64 * 1024);
    b->len = c->query.cap - c->query.len;
}

/* True when this request must wait until the client's earlier requests
 * have answered: the transaction commands that use a connection of their
 * own (gw_tx_needs_drain), and a HELLO that changes the protocol — the
 * requests before it travel on the other protocol's node connections, and
 * would otherwise race the ones after it. */
static bool needs_drain(const gw_client *c, size_t argc, const resp_arg *argv)
{
    int64_t ver;
    if (argc >= 2 && arg_eq(&argv[0], "hello") && str_to_i64(argv[1].p, argv[1].len, &ver) &&
        (ver == 2 || ver == 3) && ver != c->proto)
        return true;
    return gw_tx_needs_drain(c, argc, argv);
}

static void process(gw_client *c)
{
    while (buf_unread(&c->query) && !c->closing && !c->close_after && !c->drain_wait) {
        if (c->nslots >= slot_cap(c) || pending_bytes(c) > OUT_PAUSE) {
            /* backpressure: resumed by flush() as replies drain */
            c->paused = true;
            uv_read_stop((uv_stream_t *)&c->tcp);
            break;
        }
        size_t used;
        const char *data = c->query.data + c->query.pos;
        int rc = resp_parse_request(&c->parser, data, buf_unread(&c->query), &used);
        if (rc == CAIRN_EAGAIN) break;
        if (rc < 0) {
            /* earlier requests are answered first, then this error, then
             * the connection closes (as the node and Redis do) */
            gwc_local_error(c, "ERR %s", c->parser.err ? c->parser.err : "Protocol error");
            c->query.pos = c->query.len;
            c->close_after = true;
            break;
        }
        if (c->parser.argc && c->nslots && needs_drain(c, c->parser.argc, c->parser.argv)) {
            c->drain_wait = true; /* parsed again once flush() has drained the slots */
            break;
        }
        if (c->parser.argc) route(c, c->parser.argc, c->parser.argv, data, used);
        c->query.pos += used;
    }
    if (c->closing) return;
    buf_compact(&c->query);
    if (c->close_after || c->drain_wait) uv_read_stop((uv_stream_t *)&c->tcp);
    else if (!c->paused) uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    flush(c);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    gw_client *c = st->data;
    (void)b;
    if (nread < 0) {
        gwc_close(c);
        return;
    }
    c->query.len += (size_t)nread;
    process(c);
}

static void on_closed(uv_handle_t *h)
{
    gw_client *c = h->data;
    c->handle_closed = true;
    client_release(c);
}

static void gwc_close(gw_client *c)
{
    if (c->closing) return;
    gw_t *g = c->g;
    c->closing = true;
    dirty_del(c);
    if (c->prev) c->prev->next = c->next;
    else g->clients = c->next;
    if (c->next) c->next->prev = c->prev;
    g->nclients--;
    gw_tx_free(c);
    /* Settled slots go now; pending ones when their replies come (they
     * keep c's memory alive until then). */
    while (c->head && c->head->done) {
        gw_slot *s = c->head;
        c->head = s->next;
        if (!c->head) c->tail = NULL;
        c->nslots--;
        slot_free(s); /* cannot free c: its handle is still open */
    }
    uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_t *g = server->data;
    if (status < 0) return;
    gw_client *c = cairn_calloc(1, sizeof(*c));
    uv_tcp_init(g->loop, &c->tcp);
    c->tcp.data = c;
    c->g = g;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)cairn_free);
        return;
    }
    c->id = ++g->next_client_id;
    c->read_policy = g->read_policy;
    c->proto = 2;
    c->reply_avg = REPLY_AVG_START;
    c->ryw = g->cfg.read_your_writes;
    c->authed = !gw_config_auth_required(&g->cfg);
    c->ctime_ms = clock_ms();
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0 && ss.ss_family == AF_INET) {
        char ip[46];
        uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
        snprintf(c->addr, sizeof(c->addr), "%s:%d", ip, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    resp_parser_init(&c->parser, NULL);
    buf_init(&c->query);
    buf_init(&c->out);
    c->next = g->clients;
    if (g->clients) g->clients->prev = c;
    g->clients = c;
    g->nclients++;
    g->connections++;
    if ((int64_t)g->nclients > g->cfg.maxclients) {
        gwc_local_error(c, "ERR max number of clients reached");
        c->close_after = true;
        flush(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

int gw_listen(gw_t *g)
{
    struct sockaddr_in addr;
    int rc = uv_ip4_addr(g->cfg.bind, (int)g->cfg.port, &addr);
    if (rc < 0) return rc;
    uv_tcp_init(g->loop, &g->listener);
    g->listener.data = g;
    uv_prepare_init(g->loop, &g->wprep);
    g->wprep.data = g;
    rc = uv_tcp_bind(&g->listener, (struct sockaddr *)&addr, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&g->listener, 511, on_connection);
    if (rc == 0 && gw_config_exposed(&g->cfg))
        log_warn("listening on %s without requirepass: anyone who can reach it can read and write every "
                 "key (set --requirepass, or bind 127.0.0.1)", g->cfg.bind);
    return rc;
}

void gw_clients_close(gw_t *g)
{
    while (g->clients) gwc_close(g->clients);
}
