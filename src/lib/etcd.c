/*
 * etcd.c — etcd v3 over its JSON gateway (see etcd.h for the contract).
 *
 * Every public call is the same three steps:
 *
 *   build the JSON body (etcd__req_*, pure)  ->  call(): POST it to
 *   <endpoint><path> with libcurl, fail-over on connect failure  ->
 *   parse the body (etcd__parse_*, pure)
 *
 *   | function              | path                | request                     | reply fields used           |
 *   |-----------------------|---------------------|-----------------------------|-----------------------------|
 *   | etcd_get(_prefix)     | /v3/kv/range        | key [, range_end]           | header.revision, kvs[]      |
 *   | etcd_put              | /v3/kv/put          | key, value [, lease]        | header.revision             |
 *   | etcd_delete           | /v3/kv/deleterange  | key                         | deleted                     |
 *   | etcd_cas_put,         | /v3/kv/txn          | compare [MOD|CREATE == rev],| succeeded, responses[]      |
 *   | etcd_create_if_absent,|                     | success [put, range] or     |   .response_range.kvs       |
 *   | etcd_cas_delete       |                     | [deleterange], failure      |                             |
 *   |                       |                     | [range] or []               |                             |
 *   | etcd_lease_grant      | /v3/lease/grant     | TTL                         | ID, TTL                     |
 *   | etcd_lease_keepalive  | /v3/lease/keepalive | ID                          | result.TTL (absent: gone)   |
 *   | etcd_lease_revoke     | /v3/lease/revoke    | ID                          | —                           |
 *
 * Wire conventions of the gateway (protobuf's JSON mapping): bytes are
 * standard base64; int64 fields are JSON strings; fields equal to their
 * default (0, "", false, empty list) are omitted, so absent means zero.
 * Errors come back with a non-2xx status and {"error","code","message"},
 * where code is the gRPC status code; a streaming call (keepalive) reports
 * them with status 200 as {"error":{"grpc_code","http_code","message"}}.
 */
#include "lib/etcd.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/etcd_internal.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"

#define ENDPOINT_MAX_LEN 200
#define REQ_KEEP (64u * 1024)  /* buffer capacity kept between calls */
#define RESP_KEEP (1024u * 1024)

struct etcd {
    CURL *curl;
    struct curl_slist *headers;
    char *endpoints[ETCD_MAX_ENDPOINTS]; /* "http://host:port", no trailing '/' */
    size_t n_endpoints;
    size_t cur;       /* where the next call starts */
    long timeout_ms;
    cairn_buf req;    /* request body being sent */
    cairn_buf resp;   /* response body received */
    bool resp_overflow;
    char curl_err[CURL_ERROR_SIZE];
    char err[512];
};

static void fmt_err(char *err, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_err(char *err, size_t cap, const char *fmt, ...)
{
    if (!err || cap == 0) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

/* ==== base64 ============================================================= */

int etcd__b64_append(cairn_buf *b, const void *p, size_t n)
{
    if (n > ETCD_MAX_BYTES) return CAIRN_ELIMIT;
    size_t out = 4 * ((n + 2) / 3);
    unsigned char *dst = (unsigned char *)buf_reserve(b, out + 1); /* EVP writes a NUL */
    if (n > 0) EVP_EncodeBlock(dst, (const unsigned char *)p, (int)n);
    b->len += out;
    return 0;
}

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

int etcd__b64_decode(const char *s, size_t n, char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (n > 2 * (size_t)ETCD_MAX_BYTES) return CAIRN_EPROTO; /* responses are capped below this */
    size_t pads = 0;
    while (pads < n && s[n - 1 - pads] == '=') pads++;
    size_t body = n - pads;
    if (pads > 2 || (pads > 0 && n % 4 != 0) || body % 4 == 1) return CAIRN_EPROTO;
    for (size_t i = 0; i < body; i++)
        if (!b64_char((unsigned char)s[i])) return CAIRN_EPROTO;
    if (pads == 0 && body % 4 != 0) pads = 4 - body % 4; /* unpadded: pad a copy */

    size_t padded = body + pads;
    unsigned char *in = (unsigned char *)cairn_malloc(padded + 1);
    memcpy(in, s, body);
    memset(in + body, '=', pads);
    char *dst = cairn_malloc(padded / 4 * 3 + 1);
    int got = padded ? EVP_DecodeBlock((unsigned char *)dst, in, (int)padded) : 0;
    cairn_free(in);
    if (got < 0 || (size_t)got != padded / 4 * 3) { /* cannot happen after the checks above */
        cairn_free(dst);
        return CAIRN_EPROTO;
    }
    *outlen = (size_t)got - pads; /* EVP counts the padding as zero bytes */
    dst[*outlen] = '\0';
    *out = dst;
    return 0;
}

size_t etcd__prefix_end(const char *p, size_t n, char *out)
{
    for (size_t i = n; i > 0; i--) {
        if ((unsigned char)p[i - 1] != 0xff) {
            memcpy(out, p, i - 1);
            out[i - 1] = (char)((unsigned char)p[i - 1] + 1);
            return i;
        }
    }
    out[0] = '\0';
    return 1;
}

/* ==== request bodies ===================================================== */

static void append_i64_str(cairn_buf *b, int64_t v)
{
    buf_append(b, "\"", 1);
    buf_append_i64(b, v);
    buf_append(b, "\"", 1);
}

/* "name":"<base64>" */
static int append_b64_field(cairn_buf *b, const char *name, const char *p, size_t n)
{
    buf_append(b, "\"", 1);
    buf_append_str(b, name);
    buf_append(b, "\":\"", 3);
    int rc = etcd__b64_append(b, p, n);
    buf_append(b, "\"", 1);
    return rc;
}

int etcd__req_range(cairn_buf *b, const char *key, size_t klen, const char *end, size_t elen)
{
    buf_append_str(b, "{");
    int rc = append_b64_field(b, "key", key, klen);
    if (rc == 0 && end) {
        buf_append_str(b, ",");
        rc = append_b64_field(b, "range_end", end, elen);
    }
    buf_append_str(b, "}");
    return rc;
}

static int append_put_fields(cairn_buf *b, const char *key, size_t klen, const char *val,
                             size_t vlen, int64_t lease)
{
    int rc = append_b64_field(b, "key", key, klen);
    buf_append_str(b, ",");
    if (rc == 0) rc = append_b64_field(b, "value", val, vlen);
    if (lease != 0) {
        buf_append_str(b, ",\"lease\":");
        append_i64_str(b, lease);
    }
    return rc;
}

int etcd__req_put(cairn_buf *b, const char *key, size_t klen, const char *val, size_t vlen,
                  int64_t lease)
{
    buf_append_str(b, "{");
    int rc = append_put_fields(b, key, klen, val, vlen, lease);
    buf_append_str(b, "}");
    return rc;
}

int etcd__req_delete(cairn_buf *b, const char *key, size_t klen)
{
    return etcd__req_range(b, key, klen, NULL, 0);
}

int etcd__req_lease_grant(cairn_buf *b, int64_t ttl)
{
    buf_append_str(b, "{\"TTL\":");
    append_i64_str(b, ttl);
    buf_append_str(b, "}");
    return 0;
}

int etcd__req_lease_id(cairn_buf *b, int64_t id)
{
    buf_append_str(b, "{\"ID\":");
    append_i64_str(b, id);
    buf_append_str(b, "}");
    return 0;
}

int etcd__req_txn(cairn_buf *b, const etcd__txn *t)
{
    bool create = t->target == ETCD_TARGET_CREATE;
    buf_append_str(b, "{\"compare\":[{");
    int rc = append_b64_field(b, "key", t->key, t->klen);
    buf_append_str(b, create ? ",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":"
                             : ",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":");
    append_i64_str(b, t->rev);
    if (t->del) {
        buf_append_str(b, "}],\"success\":[{\"request_delete_range\":{");
        if (rc == 0) rc = append_b64_field(b, "key", t->key, t->klen);
        buf_append_str(b, "}}],\"failure\":[]}");
        return rc;
    }
    buf_append_str(b, "}],\"success\":[{\"request_put\":{");
    if (rc == 0) rc = append_put_fields(b, t->key, t->klen, t->val, t->vlen, t->lease);
    buf_append_str(b, "}},{\"request_range\":{");
    if (rc == 0) rc = append_b64_field(b, "key", t->key, t->klen);
    buf_append_str(b, "}}],\"failure\":[{\"request_range\":{");
    if (rc == 0) rc = append_b64_field(b, "key", t->key, t->klen);
    buf_append_str(b, "}}]}");
    return rc;
}

/* ==== responses ========================================================== */

/* gRPC status code -> our code.  Codes not listed map to -EIO. */
static const struct {
    int grpc;
    int rc;
    const char *name;
} grpc_map[] = {
    {1, -EIO, "Canceled"},          {2, -EIO, "Unknown"},
    {3, CAIRN_EINVAL, "InvalidArgument"},  {4, -ETIMEDOUT, "DeadlineExceeded"},
    {5, CAIRN_ENOTFOUND, "NotFound"},      {6, -EIO, "AlreadyExists"},
    {7, -EACCES, "PermissionDenied"},      {8, CAIRN_ELIMIT, "ResourceExhausted"},
    {9, -EIO, "FailedPrecondition"},       {10, -EIO, "Aborted"},
    {11, CAIRN_ERANGE, "OutOfRange"},      {12, -EIO, "Unimplemented"},
    {13, -EIO, "Internal"},                {14, -EAGAIN, "Unavailable"},
    {15, -EIO, "DataLoss"},                {16, -EACCES, "Unauthenticated"},
};

static int from_grpc(json_int_t code, const char **name)
{
    for (size_t i = 0; i < sizeof(grpc_map) / sizeof(grpc_map[0]); i++) {
        if (grpc_map[i].grpc == code) {
            *name = grpc_map[i].name;
            return grpc_map[i].rc;
        }
    }
    *name = "unknown code";
    return -EIO;
}

/* Body without usable JSON: judge by the HTTP status alone. */
static int from_http(long status)
{
    switch (status) {
    case 503: return -EAGAIN;
    case 408:
    case 504: return -ETIMEDOUT;
    case 401:
    case 403: return -EACCES;
    case 413: return CAIRN_ELIMIT;
    default: return -EIO;
    }
}

/* root carries an error: {"error":"..","code":N,"message":".."} or the stream
 * form {"error":{"grpc_code":N,"message":".."}}.  Returns < 0, always. */
static int error_from_json(json_t *root, long status, char *err, size_t errcap)
{
    json_t *e = json_object_get(root, "error");
    json_t *code, *msg;
    if (json_is_object(e)) {
        code = json_object_get(e, "grpc_code");
        msg = json_object_get(e, "message");
    } else {
        code = json_object_get(root, "code");
        msg = json_object_get(root, "message");
        if (!json_is_string(msg) || json_string_length(msg) == 0) msg = e;
    }
    const char *text = json_is_string(msg) ? json_string_value(msg) : "(no message)";
    if (json_is_integer(code)) {
        const char *name;
        int rc = from_grpc(json_integer_value(code), &name);
        fmt_err(err, errcap, "etcd error: %s (gRPC %s)", text, name);
        return rc;
    }
    fmt_err(err, errcap, "etcd error: %s (HTTP %ld)", text, status);
    return from_http(status);
}

/* Parses body as one JSON object; an "error" member makes it an error.
 * first_only: accept trailing data after the first value (a stream). */
static int load(const char *body, size_t len, bool first_only, json_t **root, char *err,
                size_t errcap)
{
    *root = NULL;
    if (!body || len == 0) {
        fmt_err(err, errcap, "empty response from etcd");
        return CAIRN_EPROTO;
    }
    json_error_t je;
    json_t *r = json_loadb(body, len, first_only ? JSON_DISABLE_EOF_CHECK : 0, &je);
    if (!r) {
        fmt_err(err, errcap, "bad JSON from etcd: %s (byte %d)", je.text, je.position);
        return CAIRN_EPROTO;
    }
    if (!json_is_object(r)) {
        json_decref(r);
        fmt_err(err, errcap, "bad response from etcd: not a JSON object");
        return CAIRN_EPROTO;
    }
    if (json_object_get(r, "error")) {
        int rc = error_from_json(r, 200, err, errcap);
        json_decref(r);
        return rc;
    }
    *root = r;
    return 0;
}

int etcd__parse_error(const char *body, size_t len, long http_status, char *err, size_t errcap)
{
    json_t *r = NULL;
    if (body && len > 0) {
        json_error_t je;
        r = json_loadb(body, len, 0, &je);
    }
    if (json_is_object(r) && (json_object_get(r, "error") || json_object_get(r, "code"))) {
        int rc = error_from_json(r, http_status, err, errcap);
        json_decref(r);
        return rc;
    }
    json_decref(r);
    /* Quote the start of the body, printable bytes only. */
    char snip[81];
    size_t n = 0;
    for (size_t i = 0; body && i < len && n < sizeof(snip) - 1; i++)
        snip[n++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '.';
    snip[n] = '\0';
    fmt_err(err, errcap, "HTTP %ld from etcd%s%s", http_status, n ? ": " : "", snip);
    return from_http(http_status);
}

/* An int64 member: a decimal JSON string (protobuf's form) or a JSON
 * integer; absent or null means 0. */
static int get_i64(json_t *obj, const char *name, int64_t *out, char *err, size_t errcap)
{
    json_t *v = json_object_get(obj, name);
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v) && str_to_i64(json_string_value(v), json_string_length(v), out)) return 0;
    *out = 0;
    fmt_err(err, errcap, "bad response from etcd: \"%s\" is not an int64", name);
    return CAIRN_EPROTO;
}

/* A bytes member (base64); absent or null means empty.  *out is allocated. */
static int get_bytes(json_t *obj, const char *name, char **out, size_t *len, char *err,
                     size_t errcap)
{
    json_t *v = json_object_get(obj, name);
    if (!v || json_is_null(v)) {
        *out = cairn_strndup("", 0);
        *len = 0;
        return 0;
    }
    if (json_is_string(v) && etcd__b64_decode(json_string_value(v), json_string_length(v), out, len) == 0)
        return 0;
    fmt_err(err, errcap, "bad response from etcd: \"%s\" is not base64", name);
    return CAIRN_EPROTO;
}

/* An object member; absent or null is *out = NULL. */
static int get_object(json_t *obj, const char *name, json_t **out, char *err, size_t errcap)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_object(v)) {
        *out = v;
        return 0;
    }
    fmt_err(err, errcap, "bad response from etcd: \"%s\" is not an object", name);
    return CAIRN_EPROTO;
}

static int get_array(json_t *obj, const char *name, json_t **out, char *err, size_t errcap)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (json_is_array(v)) {
        *out = v;
        return 0;
    }
    fmt_err(err, errcap, "bad response from etcd: \"%s\" is not a list", name);
    return CAIRN_EPROTO;
}

static int header_rev(json_t *root, int64_t *rev, char *err, size_t errcap)
{
    json_t *h;
    int rc = get_object(root, "header", &h, err, errcap);
    *rev = 0;
    if (rc == 0 && h) rc = get_i64(h, "revision", rev, err, errcap);
    return rc;
}

static void kvs_init(etcd_kvs *k) { memset(k, 0, sizeof(*k)); }

void etcd_kvs_free(etcd_kvs *k)
{
    if (!k) return;
    for (size_t i = 0; i < k->n; i++) {
        cairn_free(k->kv[i].key);
        cairn_free(k->kv[i].val);
    }
    cairn_free(k->kv);
    kvs_init(k);
}

static int parse_kv(json_t *o, etcd_kv *kv, char *err, size_t errcap)
{
    if (!json_is_object(o)) {
        fmt_err(err, errcap, "bad response from etcd: a kv is not an object");
        return CAIRN_EPROTO;
    }
    int rc = get_bytes(o, "key", &kv->key, &kv->klen, err, errcap);
    if (rc == 0) rc = get_bytes(o, "value", &kv->val, &kv->vlen, err, errcap);
    if (rc == 0) rc = get_i64(o, "create_revision", &kv->create_rev, err, errcap);
    if (rc == 0) rc = get_i64(o, "mod_revision", &kv->mod_rev, err, errcap);
    if (rc == 0) rc = get_i64(o, "version", &kv->version, err, errcap);
    if (rc == 0) rc = get_i64(o, "lease", &kv->lease, err, errcap);
    return rc;
}

/* range-like object (RangeResponse or a txn's response_range) -> out->kv/n.
 * On failure out is left empty. */
static int parse_kvs(json_t *range, etcd_kvs *out, char *err, size_t errcap)
{
    json_t *arr;
    int64_t count;
    int rc = get_array(range, "kvs", &arr, err, errcap);
    if (rc == 0) rc = get_i64(range, "count", &count, err, errcap);
    if (rc != 0 || !arr || json_array_size(arr) == 0) return rc;
    size_t n = json_array_size(arr);
    out->kv = cairn_calloc(n, sizeof(etcd_kv));
    for (size_t i = 0; i < n && rc == 0; i++) {
        out->n = i + 1; /* so that etcd_kvs_free sees a partly filled kv */
        rc = parse_kv(json_array_get(arr, i), &out->kv[i], err, errcap);
    }
    if (rc != 0) {
        int64_t rev = out->header_rev;
        etcd_kvs_free(out);
        out->header_rev = rev;
    }
    return rc;
}

int etcd__parse_range(const char *body, size_t len, etcd_kvs *out, char *err, size_t errcap)
{
    json_t *root;
    kvs_init(out);
    int rc = load(body, len, false, &root, err, errcap);
    if (rc != 0) return rc;
    rc = header_rev(root, &out->header_rev, err, errcap);
    if (rc == 0) rc = parse_kvs(root, out, err, errcap);
    if (rc != 0) kvs_init(out);
    json_decref(root);
    return rc;
}

int etcd__parse_put(const char *body, size_t len, int64_t *rev, char *err, size_t errcap)
{
    json_t *root;
    int64_t r = 0;
    int rc = load(body, len, false, &root, err, errcap);
    if (rc != 0) return rc;
    rc = header_rev(root, &r, err, errcap);
    json_decref(root);
    if (rc == 0 && rev) *rev = r;
    return rc;
}

int etcd__parse_delete(const char *body, size_t len, int64_t *deleted, char *err, size_t errcap)
{
    json_t *root;
    int64_t d = 0;
    int rc = load(body, len, false, &root, err, errcap);
    if (rc != 0) return rc;
    rc = get_i64(root, "deleted", &d, err, errcap);
    json_decref(root);
    if (rc == 0 && deleted) *deleted = d;
    return rc;
}

int etcd__parse_txn(const char *body, size_t len, etcd_kvs *kvs, char *err, size_t errcap)
{
    json_t *root, *resps;
    etcd_kvs tmp;
    kvs_init(&tmp);
    if (kvs) kvs_init(kvs);
    int rc = load(body, len, false, &root, err, errcap);
    if (rc != 0) return rc;

    int succeeded = 0;
    json_t *s = json_object_get(root, "succeeded");
    if (json_is_true(s)) {
        succeeded = 1;
    } else if (s && !json_is_false(s) && !json_is_null(s)) {
        fmt_err(err, errcap, "bad response from etcd: \"succeeded\" is not a boolean");
        rc = CAIRN_EPROTO;
    }
    if (rc == 0) rc = header_rev(root, &tmp.header_rev, err, errcap);
    if (rc == 0) rc = get_array(root, "responses", &resps, err, errcap);
    bool found = false;
    for (size_t i = 0; rc == 0 && resps && i < json_array_size(resps); i++) {
        json_t *op = json_array_get(resps, i), *range;
        if (!json_is_object(op)) {
            fmt_err(err, errcap, "bad response from etcd: a txn response is not an object");
            rc = CAIRN_EPROTO;
            break;
        }
        rc = get_object(op, "response_range", &range, err, errcap);
        if (rc == 0 && range && !found) {
            found = true;
            rc = parse_kvs(range, &tmp, err, errcap);
        }
    }
    json_decref(root);
    if (rc != 0) {
        etcd_kvs_free(&tmp);
        return rc;
    }
    if (kvs)
        *kvs = tmp;
    else
        etcd_kvs_free(&tmp);
    return succeeded;
}

int etcd__parse_lease_grant(const char *body, size_t len, int64_t *id, int64_t *ttl, char *err,
                            size_t errcap)
{
    json_t *root;
    int64_t i = 0, t = 0;
    int rc = load(body, len, false, &root, err, errcap);
    if (rc != 0) return rc;
    rc = get_i64(root, "ID", &i, err, errcap);
    if (rc == 0) rc = get_i64(root, "TTL", &t, err, errcap);
    json_decref(root);
    if (rc == 0 && i == 0) {
        fmt_err(err, errcap, "bad response from etcd: lease grant without an ID");
        rc = CAIRN_EPROTO;
    }
    if (rc != 0) return rc;
    *id = i;
    if (ttl) *ttl = t;
    return 0;
}

int etcd__parse_keepalive(const char *body, size_t len, int64_t *ttl, char *err, size_t errcap)
{
    json_t *root, *res;
    int64_t t = 0;
    int rc = load(body, len, true, &root, err, errcap);
    if (rc != 0) return rc;
    rc = get_object(root, "result", &res, err, errcap);
    if (rc == 0) rc = get_i64(res ? res : root, "TTL", &t, err, errcap);
    json_decref(root);
    if (rc == 0) *ttl = t > 0 ? t : 0;
    return rc;
}

int etcd__parse_ok(const char *body, size_t len, char *err, size_t errcap)
{
    json_t *root;
    int rc = load(body, len, false, &root, err, errcap);
    if (rc == 0) json_decref(root);
    return rc;
}

/* ==== transport ========================================================== */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void curl_init_once(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    etcd_t *e = ud;
    size_t n = size * nmemb;
    if (n > ETCD_MAX_BYTES - e->resp.len) {
        e->resp_overflow = true;
        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
    }
    buf_append(&e->resp, p, n);
    return n;
}

/* True when the request cannot have reached etcd, so another endpoint may
 * be tried without risking running it twice. */
static bool never_sent(CURL *c, CURLcode cc)
{
    if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
        cc == CURLE_COULDNT_RESOLVE_PROXY)
        return true;
    if (cc == CURLE_OPERATION_TIMEDOUT) {
        long sent = 0;
        return curl_easy_getinfo(c, CURLINFO_REQUEST_SIZE, &sent) == CURLE_OK && sent == 0;
    }
    return false;
}

/* POSTs e->req to `path`.  Returns 0 with a 2xx body in e->resp, or < 0 with
 * e->err set. */
static int call(etcd_t *e, const char *path)
{
    if (e->req.len > ETCD_MAX_BYTES) {
        fmt_err(e->err, sizeof(e->err), "request of %zu bytes is above the %u-byte limit",
                e->req.len, ETCD_MAX_BYTES);
        return CAIRN_ELIMIT;
    }
    size_t n = e->n_endpoints;
    long connect_cap = e->timeout_ms / (long)n;
    if (connect_cap < 1) connect_cap = 1;
    int64_t start = clock_mono_ms();
    int rc = -ECONNREFUSED;

    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDS, e->req.data);
    curl_easy_setopt(e->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)e->req.len);
    for (size_t i = 0; i < n; i++) {
        size_t idx = (e->cur + i) % n;
        char url[ENDPOINT_MAX_LEN + 64];
        snprintf(url, sizeof(url), "%s%s", e->endpoints[idx], path);
        long left = e->timeout_ms - (long)(clock_mono_ms() - start);
        if (left <= 0) {
            fmt_err(e->err, sizeof(e->err), "%s: not tried, %ld ms timeout used up", url,
                    e->timeout_ms);
            return -ETIMEDOUT;
        }
        curl_easy_setopt(e->curl, CURLOPT_URL, url);
        curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, left);
        curl_easy_setopt(e->curl, CURLOPT_CONNECTTIMEOUT_MS, connect_cap < left ? connect_cap : left);
        buf_reset(&e->resp, RESP_KEEP);
        e->resp_overflow = false;
        e->curl_err[0] = '\0';

        CURLcode cc = curl_easy_perform(e->curl);
        if (cc == CURLE_OK) {
            long status = 0;
            curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
            e->cur = idx;
            if (status >= 200 && status < 300) {
                e->err[0] = '\0'; /* forget endpoints that failed before this one */
                return 0;
            }
            char msg[sizeof(e->err) - 128];
            rc = etcd__parse_error(e->resp.data, e->resp.len, status, msg, sizeof(msg));
            fmt_err(e->err, sizeof(e->err), "%s: %s", url, msg);
            if (rc == -EAGAIN) e->cur = (idx + 1) % n; /* this member may be cut off */
            return rc;
        }
        if (e->resp_overflow) {
            fmt_err(e->err, sizeof(e->err), "%s: response above the %u-byte limit", url,
                    ETCD_MAX_BYTES);
            return CAIRN_ELIMIT;
        }
        fmt_err(e->err, sizeof(e->err), "%s: %s", url,
                e->curl_err[0] ? e->curl_err : curl_easy_strerror(cc));
        if (never_sent(e->curl, cc)) {
            rc = cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -ECONNREFUSED;
            if (n > 1) log_debug("etcd: %s; trying the next endpoint", e->err);
            continue;
        }
        /* The request may have run: do not re-send it; start elsewhere next time. */
        e->cur = (idx + 1) % n;
        return cc == CURLE_OPERATION_TIMEDOUT ? -ETIMEDOUT : -EIO;
    }
    return rc;
}

/* ==== create / destroy =================================================== */

static int add_endpoint(etcd_t *e, const char *s, size_t n)
{
    while (n > 0 && (*s == ' ' || *s == '\t')) s++, n--;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '/')) n--;
    if (n == 0) return 0; /* tolerate "a,,b" and a trailing comma */
    bool has_scheme = memmem(s, n, "://", 3) != NULL;
    if (has_scheme && !(n > 7 && strncmp(s, "http://", 7) == 0) &&
        !(n > 8 && strncmp(s, "https://", 8) == 0)) {
        log_error("etcd: endpoint \"%.*s\" is not http:// or https://", (int)n, s);
        return CAIRN_EINVAL;
    }
    if (n + 7 > ENDPOINT_MAX_LEN) {
        log_error("etcd: endpoint \"%.*s\" is too long", (int)n, s);
        return CAIRN_EINVAL;
    }
    if (e->n_endpoints == ETCD_MAX_ENDPOINTS) {
        log_error("etcd: more than %d endpoints", ETCD_MAX_ENDPOINTS);
        return CAIRN_ELIMIT;
    }
    char *ep = cairn_malloc(n + 8);
    snprintf(ep, n + 8, "%s%.*s", has_scheme ? "" : "http://", (int)n, s);
    e->endpoints[e->n_endpoints++] = ep;
    return 0;
}

etcd_t *etcd_create(const char *endpoints, long timeout_ms)
{
    if (!endpoints || timeout_ms < 1) {
        log_error("etcd: need endpoints and a timeout >= 1 ms");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    if (curl_init_rc != CURLE_OK) {
        log_error("etcd: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    etcd_t *e = cairn_calloc(1, sizeof(*e));
    e->timeout_ms = timeout_ms;
    buf_init(&e->req);
    buf_init(&e->resp);
    for (const char *p = endpoints;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (add_endpoint(e, p, n) != 0) goto fail;
        if (!comma) break;
        p = comma + 1;
    }
    if (e->n_endpoints == 0) {
        log_error("etcd: empty endpoint list \"%s\"", endpoints);
        goto fail;
    }

    e->curl = curl_easy_init();
    if (!e->curl) {
        log_error("etcd: curl_easy_init failed");
        goto fail;
    }
    e->headers = curl_slist_append(NULL, "Content-Type: application/json");
    /* No "Expect: 100-continue" round trip before larger bodies. */
    struct curl_slist *h = e->headers ? curl_slist_append(e->headers, "Expect:") : NULL;
    if (!h) {
        log_error("etcd: curl_slist_append failed");
        goto fail;
    }
    e->headers = h;
    CURL *c = e->curl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  /* threads; timeouts without SIGALRM */
    curl_easy_setopt(c, CURLOPT_PROXY, "");     /* etcd is never behind $http_proxy */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)ETCD_MAX_BYTES);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, e);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, e->curl_err);
    return e;

fail:
    etcd_destroy(e);
    return NULL;
}

void etcd_destroy(etcd_t *e)
{
    if (!e) return;
    if (e->curl) curl_easy_cleanup(e->curl);
    curl_slist_free_all(e->headers);
    for (size_t i = 0; i < e->n_endpoints; i++) cairn_free(e->endpoints[i]);
    buf_close(&e->req);
    buf_close(&e->resp);
    cairn_free(e);
}

const char *etcd_last_error(etcd_t *e) { return e ? e->err : "no etcd client"; }

/* ==== the calls ========================================================== */

/* Starts a call: clears the previous error and request. */
static void begin(etcd_t *e)
{
    e->err[0] = '\0';
    buf_reset(&e->req, REQ_KEEP);
}

static int bad_arg(etcd_t *e, const char *what)
{
    if (e) fmt_err(e->err, sizeof(e->err), "invalid argument: %s", what);
    return CAIRN_EINVAL;
}

static bool key_ok(const char *key, size_t klen) { return key && klen > 0; }
static bool val_ok(const char *val, size_t vlen) { return val || vlen == 0; }

int etcd_get(etcd_t *e, const char *key, size_t klen, etcd_kvs *out)
{
    if (out) kvs_init(out);
    if (!e || !out || !key_ok(key, klen)) return bad_arg(e, "etcd_get: key");
    begin(e);
    int rc = etcd__req_range(&e->req, key, klen, NULL, 0);
    if (rc == 0) rc = call(e, "/v3/kv/range");
    if (rc == 0) rc = etcd__parse_range(e->resp.data, e->resp.len, out, e->err, sizeof(e->err));
    return rc;
}

int etcd_get_prefix(etcd_t *e, const char *prefix, size_t plen, etcd_kvs *out)
{
    if (out) kvs_init(out);
    if (!e || !out || (!prefix && plen > 0)) return bad_arg(e, "etcd_get_prefix: prefix");
    begin(e);
    if (plen > ETCD_MAX_BYTES) {
        fmt_err(e->err, sizeof(e->err), "prefix above the %u-byte limit", ETCD_MAX_BYTES);
        return CAIRN_ELIMIT;
    }
    char *end = cairn_malloc(plen ? plen : 1);
    size_t elen = etcd__prefix_end(prefix, plen, end);
    /* etcd has no empty key: the whole keyspace is ["\0", "\0"). */
    int rc = plen ? etcd__req_range(&e->req, prefix, plen, end, elen)
                  : etcd__req_range(&e->req, "\0", 1, end, elen);
    cairn_free(end);
    if (rc == 0) rc = call(e, "/v3/kv/range");
    if (rc == 0) rc = etcd__parse_range(e->resp.data, e->resp.len, out, e->err, sizeof(e->err));
    return rc;
}

int etcd_put(etcd_t *e, const char *key, size_t klen, const char *val, size_t vlen, int64_t lease,
             int64_t *rev)
{
    if (!e || !key_ok(key, klen) || !val_ok(val, vlen) || lease < 0)
        return bad_arg(e, "etcd_put: key, value or lease");
    begin(e);
    int rc = etcd__req_put(&e->req, key, klen, val, vlen, lease);
    if (rc == 0) rc = call(e, "/v3/kv/put");
    if (rc == 0) rc = etcd__parse_put(e->resp.data, e->resp.len, rev, e->err, sizeof(e->err));
    return rc;
}

int etcd_delete(etcd_t *e, const char *key, size_t klen, int64_t *deleted)
{
    if (!e || !key_ok(key, klen)) return bad_arg(e, "etcd_delete: key");
    begin(e);
    int rc = etcd__req_delete(&e->req, key, klen);
    if (rc == 0) rc = call(e, "/v3/kv/deleterange");
    if (rc == 0) rc = etcd__parse_delete(e->resp.data, e->resp.len, deleted, e->err, sizeof(e->err));
    return rc;
}

static int txn(etcd_t *e, const etcd__txn *t, etcd_kvs *current)
{
    begin(e);
    int rc = etcd__req_txn(&e->req, t);
    if (rc == 0) rc = call(e, "/v3/kv/txn");
    if (rc == 0) rc = etcd__parse_txn(e->resp.data, e->resp.len, current, e->err, sizeof(e->err));
    return rc;
}

int etcd_cas_put(etcd_t *e, const char *key, size_t klen, int64_t expect_mod, const char *val,
                 size_t vlen, int64_t lease, etcd_kvs *current)
{
    if (current) kvs_init(current);
    if (!e || !key_ok(key, klen) || !val_ok(val, vlen) || expect_mod < 0 || lease < 0)
        return bad_arg(e, "etcd_cas_put: key, value, expect_mod or lease");
    etcd__txn t = {.key = key, .klen = klen, .target = ETCD_TARGET_MOD, .rev = expect_mod,
                   .val = val, .vlen = vlen, .lease = lease};
    return txn(e, &t, current);
}

int etcd_create_if_absent(etcd_t *e, const char *key, size_t klen, const char *val, size_t vlen,
                          int64_t lease, etcd_kvs *current)
{
    if (current) kvs_init(current);
    if (!e || !key_ok(key, klen) || !val_ok(val, vlen) || lease < 0)
        return bad_arg(e, "etcd_create_if_absent: key, value or lease");
    etcd__txn t = {.key = key, .klen = klen, .target = ETCD_TARGET_CREATE, .rev = 0,
                   .val = val, .vlen = vlen, .lease = lease};
    return txn(e, &t, current);
}

int etcd_cas_delete(etcd_t *e, const char *key, size_t klen, int64_t expect_mod)
{
    if (!e || !key_ok(key, klen) || expect_mod <= 0)
        return bad_arg(e, "etcd_cas_delete: key or expect_mod");
    etcd__txn t = {.key = key, .klen = klen, .target = ETCD_TARGET_MOD, .rev = expect_mod,
                   .del = true};
    return txn(e, &t, NULL);
}

int etcd_lease_grant(etcd_t *e, int64_t ttl_s, int64_t *lease_id, int64_t *granted_ttl)
{
    if (!e || ttl_s <= 0 || !lease_id) return bad_arg(e, "etcd_lease_grant: ttl or lease_id");
    begin(e);
    int rc = etcd__req_lease_grant(&e->req, ttl_s);
    if (rc == 0) rc = call(e, "/v3/lease/grant");
    if (rc == 0)
        rc = etcd__parse_lease_grant(e->resp.data, e->resp.len, lease_id, granted_ttl, e->err,
                                     sizeof(e->err));
    return rc;
}

int etcd_lease_keepalive(etcd_t *e, int64_t lease_id, int64_t *ttl)
{
    if (!e || lease_id <= 0) return bad_arg(e, "etcd_lease_keepalive: lease_id");
    begin(e);
    int64_t t = 0;
    int rc = etcd__req_lease_id(&e->req, lease_id);
    if (rc == 0) rc = call(e, "/v3/lease/keepalive");
    if (rc == 0) rc = etcd__parse_keepalive(e->resp.data, e->resp.len, &t, e->err, sizeof(e->err));
    if (rc != 0) return rc;
    if (ttl) *ttl = t;
    return t > INT_MAX ? INT_MAX : (int)t;
}

int etcd_lease_revoke(etcd_t *e, int64_t lease_id)
{
    if (!e || lease_id <= 0) return bad_arg(e, "etcd_lease_revoke: lease_id");
    begin(e);
    int rc = etcd__req_lease_id(&e->req, lease_id);
    if (rc == 0) rc = call(e, "/v3/lease/revoke");
    if (rc == 0) rc = etcd__parse_ok(e->resp.data, e->resp.len, e->err, sizeof(e->err));
    return rc;
}
