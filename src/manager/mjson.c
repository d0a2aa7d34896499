/*
 * mjson.c — see mjson.h for the documents.
 */
#include "manager/mjson.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/util.h"

/* Largest document we decode: a shard with 17 members is ~700 bytes. */
#define MJSON_TEXT_MAX (64 * 1024)

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return CAIRN_EPROTO;
}

void mjson_id_fmt(uint64_t id, char out[MJSON_ID_LEN + 1])
{
    snprintf(out, MJSON_ID_LEN + 1, "%016" PRIx64, id);
}

bool mjson_id_parse(const char *s, size_t n, uint64_t *id)
{
    if (n == 0 || n > MJSON_ID_LEN) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
        if (d < 0) return false;
        v = v << 4 | (uint64_t)d;
    }
    if (v == 0) return false;
    *id = v;
    return true;
}

const char *mjson_role_name(enum repl_role r)
{
    switch (r) {
    case REPL_PRIMARY: return "primary";
    case REPL_SECONDARY: return "secondary";
    case REPL_LEARNER: return "learner";
    case REPL_NONE: break;
    }
    return "none";
}

bool mjson_addr_valid(const char *s, size_t n)
{
    if (n == 0 || n >= MJSON_ADDR_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || s[i] == 0x7f || s[i] == '"') return false;
    const char *colon = memrchr(s, ':', n);
    if (!colon || colon == s) return false;
    int64_t port;
    size_t plen = n - (size_t)(colon + 1 - s);
    return str_to_i64(colon + 1, plen, &port) && port >= 1 && port <= 65535;
}

/* ---- encoding ------------------------------------------------------------- */

static json_t *id_json(uint64_t id)
{
    char s[MJSON_ID_LEN + 1];
    mjson_id_fmt(id, s);
    return json_string(s);
}

static json_t *id_array(const uint64_t *v, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(a, id_json(v[i]));
    return a;
}

json_t *mjson_shard_encode(const pl_shard *s)
{
    json_t *o = json_object();
    json_object_set_new(o, "shard", json_integer(s->cfg.shard));
    json_object_set_new(o, "version", json_integer((json_int_t)s->cfg.version));
    json_object_set_new(o, "replicas", json_integer(s->replicas));
    json_object_set_new(o, "primary", s->cfg.primary ? id_json(s->cfg.primary) : json_null());
    json_object_set_new(o, "secondaries", id_array(s->cfg.secondaries, s->cfg.nsec));
    json_object_set_new(o, "learners", id_array(s->cfg.learners, s->cfg.nlearn));
    return o;
}

json_t *mjson_node_encode(const mjson_node *n)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", id_json(n->id));
    json_object_set_new(o, "addr", json_string(n->addr));
    json_object_set_new(o, "zone", json_string(n->zone));
    json_object_set_new(o, "weight", json_integer(n->weight));
    return o;
}

static int dump_cb(const char *p, size_t n, void *data)
{
    buf_append(data, p, n);
    return 0;
}

void mjson_append(cairn_buf *b, const json_t *j)
{
    json_dump_callback(j, dump_cb, b, JSON_COMPACT | JSON_PRESERVE_ORDER);
}

/* ---- decoding ------------------------------------------------------------- */

static json_t *load_object(const char *text, size_t len, char *err, size_t errlen)
{
    if (len > MJSON_TEXT_MAX) {
        fail(err, errlen, "document larger than %d bytes", MJSON_TEXT_MAX);
        return NULL;
    }
    json_error_t je;
    json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fail(err, errlen, "invalid JSON: %s", je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fail(err, errlen, "expected a JSON object");
        return NULL;
    }
    return j;
}

/* An optional integer member in [min, max]; absent or null leaves *out. */
static int get_int(json_t *o, const char *key, bool required, int64_t min, int64_t max,
                   int64_t *out, char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return fail(err, errlen, "\"%s\" is missing", key);
        return 0;
    }
    if (!json_is_integer(v)) return fail(err, errlen, "\"%s\" must be an integer", key);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return fail(err, errlen, "\"%s\" out of range (%" PRId64 "..%" PRId64 ")", key, min, max);
    *out = i;
    return 0;
}

static int get_id(json_t *v, const char *what, uint64_t *out, char *err, size_t errlen)
{
    if (!json_is_string(v) ||
        !mjson_id_parse(json_string_value(v), json_string_length(v), out))
        return fail(err, errlen, "%s must be a node id (1 to 16 hex digits, not zero)", what);
    return 0;
}

/* A string member copied into out[cap]; `valid` checks it when not NULL. */
static int get_str(json_t *o, const char *key, bool required, char *out, size_t cap,
                   bool (*valid)(const char *, size_t), char *err, size_t errlen)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return fail(err, errlen, "\"%s\" is missing", key);
        return 0;
    }
    if (!json_is_string(v)) return fail(err, errlen, "\"%s\" must be a string", key);
    size_t n = json_string_length(v);
    const char *s = json_string_value(v);
    if (n >= cap) return fail(err, errlen, "\"%s\" is longer than %zu bytes", key, cap - 1);
    if (memchr(s, '\0', n)) return fail(err, errlen, "\"%s\" contains a NUL byte", key);
    if (valid && !valid(s, n)) return fail(err, errlen, "\"%s\" is not valid: '%s'", key, s);
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

static bool zone_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f) return false;
    return true;
}

static int get_ids(json_t *o, const char *key, uint64_t *out, size_t *n, char *err, size_t errlen)
{
    json_t *a = json_object_get(o, key);
    *n = 0;
    if (!a || json_is_null(a)) return 0;
    if (!json_is_array(a)) return fail(err, errlen, "\"%s\" must be an array", key);
    if (json_array_size(a) > REPL_MAX_MEMBERS)
        return fail(err, errlen, "\"%s\" has more than %d members", key, REPL_MAX_MEMBERS);
    for (size_t i = 0; i < json_array_size(a); i++) {
        char what[64];
        snprintf(what, sizeof(what), "\"%s\"[%zu]", key, i);
        int rc = get_id(json_array_get(a, i), what, &out[i], err, errlen);
        if (rc < 0) return rc;
    }
    *n = json_array_size(a);
    return 0;
}

int mjson_shard_decode(const char *text, size_t len, pl_shard *out, char *err, size_t errlen)
{
    json_t *o = load_object(text, len, err, errlen);
    if (!o) return CAIRN_EPROTO;
    pl_shard s;
    memset(&s, 0, sizeof(s));
    int64_t shard = 0, version = 0, replicas = 0;
    int rc = get_int(o, "shard", true, 1, UINT32_MAX, &shard, err, errlen);
    if (rc == 0) rc = get_int(o, "version", true, 1, INT64_MAX, &version, err, errlen);
    if (rc == 0) rc = get_int(o, "replicas", true, 1, REPL_MAX_MEMBERS, &replicas, err, errlen);
    if (rc == 0) {
        json_t *p = json_object_get(o, "primary");
        if (!p) rc = fail(err, errlen, "\"primary\" is missing");
        else rc = get_id(p, "\"primary\"", &s.cfg.primary, err, errlen);
    }
    if (rc == 0) rc = get_ids(o, "secondaries", s.cfg.secondaries, &s.cfg.nsec, err, errlen);
    if (rc == 0) rc = get_ids(o, "learners", s.cfg.learners, &s.cfg.nlearn, err, errlen);
    json_decref(o);
    if (rc < 0) return rc;
    s.cfg.shard = (uint32_t)shard;
    s.cfg.version = (uint64_t)version;
    s.replicas = (uint32_t)replicas;
    if (!pl_shard_valid(&s)) return fail(err, errlen, "a node appears twice in the shard");
    *out = s;
    return 0;
}

static int node_fields(json_t *o, mjson_node *n, bool *has_weight, char *err, size_t errlen)
{
    json_t *id = json_object_get(o, "id");
    if (!id) return fail(err, errlen, "\"id\" is missing");
    int rc = get_id(id, "\"id\"", &n->id, err, errlen);
    if (rc == 0) rc = get_str(o, "addr", true, n->addr, sizeof(n->addr), mjson_addr_valid, err,
                              errlen);
    if (rc == 0) rc = get_str(o, "zone", false, n->zone, sizeof(n->zone), zone_valid, err, errlen);
    n->weight = 1;
    if (rc == 0) rc = get_int(o, "weight", false, 0, MJSON_WEIGHT_MAX, &n->weight, err, errlen);
    if (has_weight) {
        json_t *w = json_object_get(o, "weight");
        *has_weight = w && !json_is_null(w);
    }
    return rc;
}

int mjson_node_decode(const char *text, size_t len, mjson_node *out, char *err, size_t errlen)
{
    json_t *o = load_object(text, len, err, errlen);
    if (!o) return CAIRN_EPROTO;
    mjson_node n;
    memset(&n, 0, sizeof(n));
    int rc = node_fields(o, &n, NULL, err, errlen);
    json_decref(o);
    if (rc == 0) *out = n;
    return rc;
}

int mjson_heartbeat_decode(const char *text, size_t len, mjson_heartbeat *out, char *err,
                           size_t errlen)
{
    json_t *o = load_object(text, len, err, errlen);
    if (!o) return CAIRN_EPROTO;
    mjson_heartbeat h;
    memset(&h, 0, sizeof(h));
    int64_t shard = 0, version = 0, last = 0, durable = 0, commit = 0, floor = 0;
    int rc = node_fields(o, &h.node, &h.has_weight, err, errlen);
    if (rc == 0) rc = get_int(o, "shard", false, 0, UINT32_MAX, &shard, err, errlen);
    if (rc == 0) rc = get_int(o, "version", false, 0, INT64_MAX, &version, err, errlen);
    if (rc == 0) rc = get_int(o, "last_lsn", false, 0, INT64_MAX, &last, err, errlen);
    if (rc == 0) rc = get_int(o, "durable_lsn", false, 0, INT64_MAX, &durable, err, errlen);
    if (rc == 0) rc = get_int(o, "commit_lsn", false, 0, INT64_MAX, &commit, err, errlen);
    if (rc == 0) rc = get_int(o, "floor", false, 0, INT64_MAX, &floor, err, errlen);
    json_t *drain = json_object_get(o, "drain");
    if (rc == 0 && drain && !json_is_boolean(drain))
        rc = fail(err, errlen, "\"drain\" must be true or false");
    h.can_drain = drain && json_is_true(drain);
    if (rc == 0) {
        char role[16] = "none";
        rc = get_str(o, "role", false, role, sizeof(role), NULL, err, errlen);
        if (rc == 0) {
            if (strcmp(role, "primary") == 0) h.role = REPL_PRIMARY;
            else if (strcmp(role, "secondary") == 0) h.role = REPL_SECONDARY;
            else if (strcmp(role, "learner") == 0) h.role = REPL_LEARNER;
            else if (strcmp(role, "none") == 0) h.role = REPL_NONE;
            else rc = fail(err, errlen, "\"role\" must be primary, secondary, learner or none");
        }
    }
    json_decref(o);
    if (rc < 0) return rc;
    h.shard = (uint32_t)shard;
    h.version = (uint64_t)version;
    h.last_lsn = (uint64_t)last;
    h.durable_lsn = (uint64_t)durable;
    h.commit_lsn = (uint64_t)commit;
    h.floor = (uint64_t)floor;
    *out = h;
    return 0;
}

int mjson_leader_decode(const char *text, size_t len, char *id, size_t idlen, char *addr,
                        size_t addrlen)
{
    json_t *o = load_object(text, len, NULL, 0);
    if (!o) return CAIRN_EPROTO;
    json_t *i = json_object_get(o, "id"), *a = json_object_get(o, "addr");
    int rc = CAIRN_EPROTO;
    if (json_is_string(i) && json_is_string(a)) {
        snprintf(id, idlen, "%s", json_string_value(i));
        snprintf(addr, addrlen, "%s", json_string_value(a));
        rc = 0;
    }
    json_decref(o);
    return rc;
}
