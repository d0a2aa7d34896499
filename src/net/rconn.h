/*
 * rconn.h — an outbound, pipelined RESP connection on a libuv loop.
 *
 * Requests are queued and written as they come; replies are matched to
 * requests in order (RESP guarantees it) and handed to each request's
 * callback as one raw frame.  The connection is opened lazily and reopened
 * after a failure (with backoff) on the next request.  Used by nodes to reach
 * the manager and their replicas, and by the gateway and ctl.
 *
 * Callback rule: every accepted request's callback runs exactly once —
 * with its reply, or with reply == NULL when the connection failed or was
 * destroyed before the reply arrived.  (If rconn_send fails, no callback.)
 */
#ifndef CAIRN_RCONN_H
#define CAIRN_RCONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct rconn rconn_t;

/* `reply` is one complete RESP frame (valid only during the call), or NULL
 * on failure; then `len` tells whether the request may have reached the
 * server: RCONN_UNSENT (it was never written: safe to retry, even a write)
 * or RCONN_MAYBE_SENT (its outcome is unknown). */
#define RCONN_MAYBE_SENT 0
#define RCONN_UNSENT 1
typedef void (*rconn_reply_cb)(void *arg, const char *reply, size_t len);
/* Connection state changes (up = true once connected). */
typedef void (*rconn_state_cb)(void *arg, int up);

typedef struct rconn_opts {
    int64_t connect_timeout_ms; /* default 1000 */
    int64_t reply_timeout_ms;   /* 0 = none; else the connection is reset when
                                   the oldest request waits longer */
    size_t max_pending;         /* requests queued or in flight; default 100000 */
    rconn_state_cb on_state;
    void *state_arg;
    /* RESP requests sent first on every new connection (e.g. AUTH, HELLO 3,
     * a mode switch): `hello_frames` of them (0 counts as 1) in
     * hello[0..hello_len); their replies are swallowed.  NULL = none. */
    const char *hello;
    size_t hello_len;
    size_t hello_frames;
} rconn_opts;

/* True when every entry of a comma-separated list is an "ip:port" that
 * rconn_create accepts; else false with the first bad entry in bad. */
bool rconn_addr_list_ok(const char *list, char *bad, size_t badlen);

/* `addr` is "host:port".  Returns NULL on a malformed address. */
rconn_t *rconn_create(uv_loop_t *loop, const char *addr, const rconn_opts *opts);
/* Fails every pending request (callbacks with NULL) and closes; the memory
 * is released once libuv has closed the handles. */
void rconn_destroy(rconn_t *c);

/* Queue a command.  Returns 0, or CAIRN_ELIMIT when too many are pending. */
int rconn_send(rconn_t *c, size_t argc, const char *const *argv, const size_t *lens,
               rconn_reply_cb cb, void *arg);
/* printf-like convenience: every argument is a C string. */
int rconn_sendv(rconn_t *c, rconn_reply_cb cb, void *arg, size_t argc, ...);
/* Queue bytes that are already a RESP request (forwarding without
 * re-encoding). */
int rconn_send_raw(rconn_t *c, const char *req, size_t len, rconn_reply_cb cb, void *arg);
/* The same for bytes holding `nframes` requests that must stay together
 * (MULTI ... EXEC): one callback, with all their reply frames as one span. */
int rconn_send_raw_n(rconn_t *c, const char *req, size_t len, size_t nframes, rconn_reply_cb cb,
                     void *arg);

/* Write what is queued now.  Requests queued during libuv's prepare phase
 * would otherwise wait for the next loop turn (after the poll); a caller
 * that queues from its own before-sleep hook calls this at its end. */
void rconn_flush(rconn_t *c);

int rconn_connected(const rconn_t *c);
size_t rconn_pending(const rconn_t *c);
const char *rconn_addr(const rconn_t *c);

#endif
