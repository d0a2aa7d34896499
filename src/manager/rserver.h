/*
 * rserver.h — a tiny RESP server on a libuv loop, for admin-style ports.
 *
 * Accepts connections, parses requests with lib/resp, hands each one to a
 * handler that appends exactly one reply to a buffer, and writes the
 * replies back in order.  Handlers run synchronously on the loop; nothing is
 * held or deferred, which is all the manager needs (the data node has its
 * own, much richer client layer in src/node/client.c).  Nothing in it is
 * manager-specific: it could move to src/net/ when another process wants it.
 *
 *   on_read -> resp_parse_request (per request) -> handler -> out buffer
 *           -> uv_try_write / uv_write at the end of the read
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

#endif
