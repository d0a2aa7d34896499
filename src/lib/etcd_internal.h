/*
 * etcd_internal.h — the pure half of lib/etcd, exported for its unit tests.
 *
 * Request building and response parsing touch no socket: a builder appends a
 * JSON body to a cairn_buf, a parser reads one response body.  Nothing
 * outside etcd.c and tests/unit/test_etcd.c should include this file.
 *
 * Parsers return 0 (or a documented non-negative value) or a negative code
 * as listed in etcd.h.  On failure they write a human message to
 * err[0..errcap) when err is not NULL, and leave no allocation behind (an
 * etcd_kvs output is left empty).  A 200 body carrying "error" is an error.
 */
#ifndef CAIRN_ETCD_INTERNAL_H
#define CAIRN_ETCD_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/etcd.h"

/* ---- base64 (RFC 4648 standard alphabet) ---- */

/* Appends the padded base64 form of p[0..n) (no NUL).  Returns 0, or
 * CAIRN_ELIMIT when n > ETCD_MAX_BYTES. */
int etcd__b64_append(cairn_buf *b, const void *p, size_t n);
/* Decodes s[0..n): standard alphabet, padded or unpadded, nothing else (no
 * whitespace, no URL-safe alphabet).  On 0, *out is a cairn_malloc'd,
 * NUL-terminated copy of *outlen bytes.  Returns 0 or CAIRN_EPROTO. */
int etcd__b64_decode(const char *s, size_t n, char **out, size_t *outlen);

/* The range_end that selects every key starting with p[0..n): p with its
 * last byte below 0xff incremented and what follows dropped.  When there is
 * none (n == 0 or all 0xff) it is the single byte "\0", which etcd reads as
 * "every key >= key".  out must hold n bytes (1 if n == 0). */
size_t etcd__prefix_end(const char *p, size_t n, char *out);

/* ---- request bodies (append to b; return 0 or CAIRN_ELIMIT) ---- */

/* {"key":..} or, with end != NULL, {"key":..,"range_end":..}. */
int etcd__req_range(cairn_buf *b, const char *key, size_t klen, const char *end, size_t elen);
/* {"key":..,"value":..[,"lease":"N"]} */
int etcd__req_put(cairn_buf *b, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t lease);
/* {"key":..} */
int etcd__req_delete(cairn_buf *b, const char *key, size_t klen);
/* {"TTL":"N"} */
int etcd__req_lease_grant(cairn_buf *b, int64_t ttl);
/* {"ID":"N"} — keepalive and revoke */
int etcd__req_lease_id(cairn_buf *b, int64_t id);

/* The transactions of the compare-and-swap helpers:
 *   compare:  key's <target> revision == rev    (target MOD or CREATE)
 *   del:      success [deleterange key]          failure []
 *   !del:     success [put key=val lease, range key]
 *             failure [range key]                                       */
enum etcd__target { ETCD_TARGET_MOD, ETCD_TARGET_CREATE };
typedef struct etcd__txn {
    const char *key;
    size_t klen;
    enum etcd__target target;
    int64_t rev;
    bool del;
    const char *val;
    size_t vlen;
    int64_t lease;
} etcd__txn;
int etcd__req_txn(cairn_buf *b, const etcd__txn *t);

/* ---- responses ---- */

/* A non-2xx answer (or an "error" member in a 2xx one): returns the negative
 * code for etcd's gRPC code — body {"error":..,"code":N,"message":..}, or
 * the streaming form {"error":{"grpc_code":N,"message":..}} — or, when the
 * body is not such JSON, for the HTTP status. */
int etcd__parse_error(const char *body, size_t len, long http_status, char *err, size_t errcap);
/* RangeResponse -> *out (kvs may be absent: n = 0). */
int etcd__parse_range(const char *body, size_t len, etcd_kvs *out, char *err, size_t errcap);
/* PutResponse -> *rev = header.revision (rev may be NULL). */
int etcd__parse_put(const char *body, size_t len, int64_t *rev, char *err, size_t errcap);
/* DeleteRangeResponse -> *deleted (may be NULL). */
int etcd__parse_delete(const char *body, size_t len, int64_t *deleted, char *err, size_t errcap);
/* TxnResponse: returns 1 if "succeeded" is true, 0 if false or absent.
 * kvs (may be NULL) gets the first response_range among the responses
 * (n = 0 if there is none) and header_rev = the txn's header.revision. */
int etcd__parse_txn(const char *body, size_t len, etcd_kvs *kvs, char *err, size_t errcap);
/* LeaseGrantResponse -> *id, *ttl (ttl may be NULL).  An ID of 0 is an error. */
int etcd__parse_lease_grant(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
                            size_t errcap);
/* LeaseKeepAliveResponse, bare or wrapped as {"result":{..}} (a stream
 * message) -> *ttl (0 when absent: the lease is gone). */
int etcd__parse_keepalive(const char *body, size_t len, int64_t *ttl, char *err, size_t errcap);
/* Any response whose only content we need is "no error" (LeaseRevoke). */
int etcd__parse_ok(const char *body, size_t len, char *err, size_t errcap);

#endif
