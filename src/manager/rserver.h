/*
 * rserver.h — a tiny RESP server on a libuv loop, for admin-style ports.
 *
 * Accepts connections, parses requests with lib/resp, hands each one to a
 * handler that appends exactly one reply to a buffer, and writes the
 * replies back in order.  Handlers run synchronously on the loop; one that
 * cannot answer yet (the manager's SWITCHOVER, which waits for a primary
 * to drain) defers its reply, and its connection runs nothing more until
 * the reply comes (the data node has its own, much richer client layer in
 * src/node/client.c).  Nothing in it is manager-specific: it could move to
 * src/net/ when another process wants it.
 *
 *   on_read -> run: resp_parse_request (per request) -> handler -> out buffer
 *           -> uv_try_write / uv_write at the end of the read
 *   handler -> rserver_defer: reading stops, later requests wait
 *   rserver_complete -> the reply into out -> run the waiting requests
 *
 * Limits: requests are bounded by the parser limits given at creation; a
 * connection with more than RSERVER_OUT_MAX bytes of unsent replies is
 * closed (a client that never reads cannot grow our memory).
 */
#ifndef CAIRN_RSERVER_H
#define CAIRN_RSERVER_H

#include <stddef.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/resp.h"

#define RSERVER_OUT_MAX (64u * 1024 * 1024)

/* What the handler wants done after its reply. */
enum rserver_action {
    RSERVER_CONTINUE = 0, /* read the next request */
    RSERVER_CLOSE = 1,    /* close this connection once its replies are written */
};

/* Handle one request argv[0..argc) (argc > 0; pointers valid during the
 * call only), appending one reply to out.  `peer` is "ip:port". */
typedef enum rserver_action (*rserver_handler)(void *arg, const char *peer, size_t argc,
                                               const resp_arg *argv, cairn_buf *out);

typedef struct rserver rserver_t;

/* lim NULL = resp defaults.  Returns NULL never (allocation aborts). */
rserver_t *rserver_create(uv_loop_t *loop, const resp_limits *lim, rserver_handler h, void *arg);
/* Bind and listen on bind:port (IPv4 or IPv6 literal).  0 or a libuv code;
 * the caller logs. */
int rserver_listen(rserver_t *s, const char *bind, int port);
/* Close the listener and every connection; memory goes once libuv has
 * closed the handles (run the loop afterwards). */
void rserver_destroy(rserver_t *s);
size_t rserver_nconns(const rserver_t *s);

/* Called by a handler, during its call, that will answer later: it appends
 * nothing to `out`, and the connection runs no further request until
 * rserver_complete().  Returns the token that names the reply (never 0). */
uint64_t rserver_defer(rserver_t *s);
/* The deferred reply `token` (one complete RESP frame, copied); then the
 * connection's next requests run.  Dropped silently if its connection has
 * closed meanwhile (or the server is being destroyed).  Not from inside a
 * handler. */
void rserver_complete(rserver_t *s, uint64_t token, const char *reply, size_t len);

#endif
