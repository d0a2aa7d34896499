/*
 * gw_client.h — the gateway's client side, shared by gw_client.c (routing,
 * slots, retries) and gw_tx.c (MULTI/EXEC/WATCH).  Internal to src/gateway.
 */
#ifndef CAIRN_GW_CLIENT_H
#define CAIRN_GW_CLIENT_H

#include "gateway/gw.h"
#include "node/cmd.h"

/* Backpressure per client: reading stops while it has slot_cap() requests
 * unanswered (at most MAX_SLOTS_PER_CLIENT, fewer when its replies are
 * large: about OUT_PAUSE of replies in flight) or OUT_PAUSE bytes of
 * replies not yet written. */
#define MAX_SLOTS_PER_CLIENT 256
#define OUT_PAUSE (4u << 20)
#define REPLY_AVG_START (256u << 10) /* a new client's assumed reply size: 16 in flight */

enum merge { M_ONE, M_MGET, M_SUM, M_OK, M_KEYS, M_SCAN, M_RANDOM };

typedef struct gw_slot {
    struct gw_slot *next; /* also the free list's link */
    gw_client *c;
    cairn_buf reply;
    int pending;
    bool done;
    enum merge kind;
    resp_value **vals; /* M_MGET: one per key */
    size_t nvals;
    int64_t sum;
    cairn_buf acc;     /* M_KEYS: concatenated elements */
    size_t acc_n;
    char *err;         /* first error of a part (full RESP line) */
    size_t held;       /* reply bytes counted in the client's `held` */
    size_t scan_idx;   /* M_SCAN: the shard index scanned */
    int scan_from;     /* M_SCAN: tag of the node the cursor came from; -1: the shard's start */
    int proto;         /* the client's protocol when it asked: merged replies are built in it */
} gw_slot;

#define REQ_INLINE 112 /* request bytes kept inside the gw_req (most requests) */

typedef struct gw_req {
    struct gw_req *next_retry; /* also the free list's link */
    gw_t *g;
    gw_slot *slot;
    char *bytes;
    size_t len;
    uint32_t shard_id;
    bool write, ro;
    size_t *pos; /* M_MGET: where this part's values go */
    size_t npos;
    int64_t deadline_ms, retry_at_ms, start_us;
    int attempts;
    uint64_t node_id;
    int member_idx;
    size_t nframes; /* > 1: a MULTI ... EXEC block answered by that many frames */
    bool ryw;        /* a write followed by CAIRN LSN (its last frame) */
    bool to_primary; /* a read that must go to the primary (a transaction, or
                        a replica that had not applied the client's writes) */
    int proto;       /* the slot's protocol: the pool it travels on (retries too) */
    char inline_bytes[REQ_INLINE]; /* `bytes` when they fit */
} gw_req;

struct gw_client {
    uv_tcp_t tcp;
    gw_t *g;
    uint64_t id;
    char addr[64];
    char *name;
    resp_parser parser;
    cairn_buf query, out;
    gw_slot *head, *tail;
    size_t nslots;
    int read_policy;
    bool closing, handle_closed, paused, writing;
    size_t refs; /* slots not yet freed */
    int64_t ctime_ms;
    gw_client *prev, *next;
    gw_client *dnext; /* on g->dirty */
    bool dirty;
    bool close_after;      /* QUIT / protocol error: close once answered */
    bool authed;           /* AUTH passed, or no requirepass: set at parse time, in order */
    int proto;             /* 2, or 3 after HELLO 3: set at parse time, once earlier
                              requests have answered (needs_drain) */
    size_t inflight_bytes; /* handed to uv_write, not yet written */
    size_t held;           /* reply bytes waiting in slots behind an unanswered one */
    size_t reply_avg;      /* moving average of its reply sizes (slot_cap) */
    size_t retrying;       /* requests of this client on the retry queue */
    bool drain_wait;       /* a WATCH / watched EXEC waits for earlier replies */
    struct gw_tx *tx;      /* MULTI / WATCH state (gw_tx.c); NULL when none */
    /* read-your-writes: LSN of the client's last write, by shard id */
    bool ryw;
    size_t ryw_inflight; /* tracked writes not answered yet: reads go to primaries */
    uint64_t *ryw_lsn;
    size_t ryw_cap;
};

/* ---- gw_client.c, for gw_tx.c ---- */
gw_slot *gwc_slot_new(gw_client *c);
/* Complete a one-part slot with a reply frame (or error line). */
void gwc_slot_reply(gw_slot *s, const char *frame, size_t len);
void gwc_local_raw(gw_client *c, const char *bytes, size_t len);
void gwc_reply_unknown(gw_client *c, size_t argc, const resp_arg *argv);
void gwc_local_error(gw_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
gw_req *gwc_req_new(gw_client *c, gw_slot *s, uint32_t shard, bool write, const char *bytes, size_t len);
void gwc_send_or_queue(gw_req *r);
bool gwc_refused_before_execution(const char *frame, size_t len);
void gwc_encode(cairn_buf *b, size_t argc, const resp_arg *argv);

/* ---- gw_tx.c ---- */
/* MULTI, EXEC, DISCARD, WATCH, UNWATCH, and every command while in MULTI:
 * returns true when it answered (or queued) the request. */
bool gw_tx_route(gw_client *c, size_t argc, const resp_arg *argv, const char *raw, size_t rawlen);
/* True when this request must wait until the client's earlier requests
 * have answered (WATCH, and EXEC under WATCH: they use a connection of
 * their own, so ordering with the shared connections is by waiting). */
bool gw_tx_needs_drain(const gw_client *c, size_t argc, const resp_arg *argv);
/* The reply span of a MULTI ... EXEC block: EXEC's frame, and whether the
 * node refused the block before executing any of it. */
void gw_tx_block_reply(const char *span, size_t len, size_t nframes, const char **exec_frame,
                       size_t *exec_len, bool *refused);
void gw_tx_free(gw_client *c);

#endif
