/*
 * etcd.h — a small, synchronous client for etcd's v3 JSON gateway.
 *
 * etcd is where cluster state is decided (DESIGN.md, Cluster management):
 * the active manager holds its role through a lease, and shard
 * configurations change only by compare-and-swap.  This client speaks the
 * gRPC gateway that every etcd 3.4+ member serves on its client URL:
 * HTTP/1.1 POST of a JSON body to /v3/kv/range, /v3/kv/put, ... with keys
 * and values base64-encoded and int64 fields as JSON strings.
 *
 * Calls block.  Each call is bounded by the `timeout_ms` given to
 * etcd_create, connect and transfer together, across every endpoint it
 * tries; no call retries forever.
 *
 * Endpoints and fail-over.  A call starts at the endpoint that last
 * answered.  When it cannot connect there (refused, unresolvable, or the
 * connect itself timed out — so the request was never sent), it tries the
 * next endpoint, each endpoint at most once per call; connecting to one
 * endpoint may use at most timeout_ms / number-of-endpoints (at least 1 ms).
 * A request that was sent is never re-sent (a compare-and-swap must not run
 * twice), but after a timeout or an "unavailable" answer the next call
 * starts at the next endpoint, so a member cut off from its cluster is left
 * behind.
 *
 * Errors (negative, see lib/err.h).  etcd_last_error() gives the text.
 *   -ECONNREFUSED       no endpoint accepted a connection
 *   -ETIMEDOUT          timeout_ms passed (or etcd reported DeadlineExceeded)
 *   -EAGAIN             etcd is temporarily unavailable (gRPC Unavailable:
 *                       no leader, leader changed, request timed out)
 *   -EACCES             authentication or permission refused
 *   -EIO                any other transport or HTTP failure, or an etcd
 *                       error without a more precise mapping
 *   CAIRN_ENOTFOUND     etcd said NotFound (e.g. "requested lease not found")
 *   CAIRN_EINVAL        bad argument, ours or etcd's InvalidArgument
 *   CAIRN_ELIMIT        request or response above ETCD_MAX_BYTES, or etcd's
 *                       ResourceExhausted (too many requests, no space)
 *   CAIRN_ERANGE        etcd's OutOfRange (e.g. revision compacted)
 *   CAIRN_EPROTO        a response that is not the JSON we expect
 *
 * Threads: an etcd_t is not thread-safe; use one per thread.  Different
 * etcd_t may be used concurrently (libcurl's global initialisation is done
 * once, under pthread_once, by the first etcd_create).
 *
 * Memory: every etcd_kvs filled by a call owns its keys and values
 * (allocated with cairn_malloc); release it with etcd_kvs_free.  A call
 * always initialises its etcd_kvs output first (n = 0), even when it fails,
 * so etcd_kvs_free is always safe on it.
 */
#ifndef CAIRN_ETCD_H
#define CAIRN_ETCD_H

#include <stddef.h>
#include <stdint.h>

/* Limit on one request body and on one response body (bytes). */
#define ETCD_MAX_BYTES (64u * 1024 * 1024)
/* At most this many endpoints in the list given to etcd_create. */
#define ETCD_MAX_ENDPOINTS 16

typedef struct etcd etcd_t;

/* endpoints: comma-separated URLs, "http://127.0.0.1:2379,http://10.0.0.2:2379"
 * (https:// works with the system's CAs; a bare "host:port" means http://).
 * timeout_ms (>= 1) bounds every call.  Returns NULL (and logs why) on an
 * empty or malformed list or a bad timeout.  Connects lazily: creating a
 * client never fails because etcd is down. */
etcd_t *etcd_create(const char *endpoints, long timeout_ms);
/* Closes connections and frees the client.  NULL is a no-op. */
void etcd_destroy(etcd_t *e);

/* One key-value.  key and val are NUL-terminated for convenience (the NUL is
 * not counted in klen/vlen); both may contain NUL bytes.  Revisions are 0
 * when etcd omits them; lease 0 means no lease. */
typedef struct etcd_kv {
    char *key;
    size_t klen;
    char *val;
    size_t vlen;
    int64_t create_rev, mod_rev, version, lease;
} etcd_kv;

/* Result of a read: n key-values in key order, and the store's revision at
 * the time of the read (header_rev). */
typedef struct etcd_kvs {
    etcd_kv *kv;
    size_t n;
    int64_t header_rev;
} etcd_kvs;

/* Frees what a call put in *k and resets it to empty.  NULL is a no-op. */
void etcd_kvs_free(etcd_kvs *k);

/* Reads one key.  Returns 0 with out->n = 0 (absent) or 1, or < 0.
 * klen must be > 0 (etcd has no empty key). */
int etcd_get(etcd_t *e, const char *key, size_t klen, etcd_kvs *out);
/* Reads every key starting with prefix (range_end = prefix + 1); plen 0
 * reads the whole keyspace.  Returns 0 or < 0. */
int etcd_get_prefix(etcd_t *e, const char *prefix, size_t plen, etcd_kvs *out);
/* Writes key = val, attached to `lease` (0 = none).  *rev (may be NULL)
 * gets the revision of the write.  Returns 0 or < 0 (CAIRN_ENOTFOUND when
 * the lease does not exist). */
int etcd_put(etcd_t *e, const char *key, size_t klen, const char *val, size_t vlen, int64_t lease,
             int64_t *rev);
/* Deletes one key.  *deleted (may be NULL) gets 0 or 1.  Returns 0 or < 0. */
int etcd_delete(etcd_t *e, const char *key, size_t klen, int64_t *deleted);

/* Compare-and-swap helpers, each one etcd transaction.
 *
 * etcd_cas_put: writes key = val (with lease, 0 = none) only if the key's
 * mod_revision == expect_mod; expect_mod 0 means "the key must not exist".
 * Returns 1 if it wrote, 0 if the compare failed, < 0 on error.
 * If current is not NULL it is filled in the same transaction:
 *   on 1, with the key as just written (so current->kv[0].mod_rev is the
 *         expect_mod for the next compare-and-swap);
 *   on 0, with the key's current value (n = 0 if it does not exist). */
int etcd_cas_put(etcd_t *e, const char *key, size_t klen, int64_t expect_mod, const char *val,
                 size_t vlen, int64_t lease, etcd_kvs *current);
/* Election primitive: creates key = val with `lease` only if the key does
 * not exist (create_revision == 0).  Returns 1 won, 0 lost, < 0 error.
 * current (may be NULL) is filled as for etcd_cas_put: our key when we won,
 * the owner's key when we lost. */
int etcd_create_if_absent(etcd_t *e, const char *key, size_t klen, const char *val, size_t vlen,
                          int64_t lease, etcd_kvs *current);
/* Deletes key only if its mod_revision == expect_mod (> 0): stepping down
 * without deleting a successor's key.  Returns 1 deleted, 0 the compare
 * failed (someone else's key, or no key), < 0 error. */
int etcd_cas_delete(etcd_t *e, const char *key, size_t klen, int64_t expect_mod);

/* Grants a lease of ttl_s seconds (> 0; etcd may raise it to its minimum).
 * *lease_id gets its id, *granted_ttl (may be NULL) the TTL etcd granted.
 * Returns 0 or < 0. */
int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *lease_id, int64_t *granted_ttl);
/* Renews a lease once.  Returns its remaining TTL in seconds (> 0, clamped
 * to INT_MAX), 0 if the lease is gone (expired or revoked), < 0 on error.
 * *ttl (may be NULL) gets the same TTL unclamped. */
int etcd_lease_keepalive(etcd_t *e, int64_t lease_id, int64_t *ttl);
/* Revokes a lease, deleting every key attached to it.  Returns 0, or
 * CAIRN_ENOTFOUND if it was already gone, or another < 0. */
int etcd_lease_revoke(etcd_t *e, int64_t lease_id);

/* Human text of why the last call on `e` failed ("" if it succeeded): the
 * URL and the curl error, HTTP status, or etcd's message.  Valid until the
 * next call on `e`. */
const char *etcd_last_error(etcd_t *e);

#endif
