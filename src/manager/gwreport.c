/*
 * gwreport.c — see gwreport.h for the report and its lifetime.
 */
#include "manager/gwreport.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mem.h"

/* What a report may hold: each known field and its JSON type.  A string
 * field is at most `max` bytes. */
enum field_type { F_INT, F_BOOL, F_STR };

typedef struct field {
    const char *name;
    enum field_type type;
    size_t max;
} field;

static const field top_fields[] = {
    {"pid", F_INT, 0},      {"uptime_s", F_INT, 0}, {"topology_version", F_INT, 0},
    {"clients", F_INT, 0},  {"commands", F_INT, 0}, {"connections", F_INT, 0},
    {"errors", F_INT, 0},   {"retried", F_INT, 0},
};

static const field node_fields[] = {
    {"id", F_STR, MJSON_ID_LEN},
    {"addr", F_STR, MJSON_ADDR_MAX - 1},
    {"shard", F_INT, 0},
    {"role", F_STR, 16},
    {"requests", F_INT, 0},
    {"errors", F_INT, 0},
    {"retries", F_INT, 0},
    {"outstanding", F_INT, 0},
    {"p50_us", F_INT, 0},
    {"p99_us", F_INT, 0},
    {"p999_us", F_INT, 0},
    {"ejected", F_BOOL, 0},
    {"slow_start", F_BOOL, 0},
    {"healthy", F_BOOL, 0},
};

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

/* Copy the known fields of `in` into the new object *out (in table
 * order).  0 or CAIRN_EPROTO; on failure *out is NULL. */
static int strip(const json_t *in, const field *f, size_t nf, const char *what, json_t **out,
                 char *err, size_t errlen)
{
    *out = NULL;
    if (!json_is_object(in)) return fail(err, errlen, "%s is not a JSON object", what);
    json_t *o = json_object();
    for (size_t i = 0; i < nf; i++) {
        json_t *v = json_object_get(in, f[i].name);
        if (!v) continue;
        bool ok = f[i].type == F_INT    ? json_is_integer(v)
                  : f[i].type == F_BOOL ? json_is_boolean(v)
                                        : json_is_string(v) && json_string_length(v) <= f[i].max;
        if (!ok) {
            json_decref(o);
            return fail(err, errlen, "%s: \"%s\" must be %s", what, f[i].name,
                        f[i].type == F_INT    ? "an integer"
                        : f[i].type == F_BOOL ? "true or false"
                                              : "a short string");
        }
        json_object_set(o, f[i].name, v);
    }
    *out = o;
    return 0;
}

static int decode(const char *text, size_t len, json_t **out, char *err, size_t errlen)
{
    *out = NULL;
    if (len > GWREP_TEXT_MAX) return fail(err, errlen, "report longer than %d bytes", GWREP_TEXT_MAX);
    json_error_t je;
    json_t *in = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!in) return fail(err, errlen, "not JSON: %s", je.text);
    json_t *doc;
    int rc = strip(in, top_fields, sizeof(top_fields) / sizeof(top_fields[0]), "report", &doc,
                   err, errlen);
    if (rc < 0) goto out_in;
    json_t *nodes = json_object_get(in, "nodes");
    if (nodes) {
        if (!json_is_array(nodes) || json_array_size(nodes) > GWREP_NODES_MAX) {
            rc = fail(err, errlen, "\"nodes\" must be an array of at most %d objects",
                      GWREP_NODES_MAX);
            goto out_doc;
        }
        json_t *arr = json_array();
        json_object_set_new(doc, "nodes", arr);
        size_t i;
        json_t *v;
        json_array_foreach(nodes, i, v) {
            char what[32];
            snprintf(what, sizeof(what), "nodes[%zu]", i);
            json_t *n;
            rc = strip(v, node_fields, sizeof(node_fields) / sizeof(node_fields[0]), what, &n,
                       err, errlen);
            if (rc < 0) goto out_doc;
            json_array_append_new(arr, n);
        }
    }
    *out = doc;
    json_decref(in);
    return 0;

out_doc:
    json_decref(doc);
out_in:
    json_decref(in);
    return rc;
}

static bool id_valid(const char *s, size_t n)
{
    if (n == 0 || n >= GWREP_ID_MAX) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == '"') return false;
    return true;
}

void gwrep_init(gwrep_table *t) { memset(t, 0, sizeof(*t)); }

static void remove_row(gwrep_table *t, size_t i)
{
    json_decref(t->rows[i].doc);
    memmove(&t->rows[i], &t->rows[i + 1], (t->n - i - 1) * sizeof(t->rows[0]));
    t->n--;
}

void gwrep_close(gwrep_table *t)
{
    while (t->n) remove_row(t, t->n - 1);
    cairn_free(t->rows);
    memset(t, 0, sizeof(*t));
}

static bool live(const gwrep_row *r, int64_t now) { return now - r->at <= GWREP_TTL_MS; }

void gwrep_expire(gwrep_table *t, int64_t now)
{
    for (size_t i = 0; i < t->n;) {
        if (live(&t->rows[i], now)) i++;
        else remove_row(t, i);
    }
}

int gwrep_put(gwrep_table *t, const char *id, size_t idlen, const char *addr, size_t addrlen,
              const char *json, size_t len, int64_t now, char *err, size_t errlen)
{
    if (!id_valid(id, idlen))
        return fail(err, errlen, "gateway id must be 1 to %d printable bytes", GWREP_ID_MAX - 1);
    if (!mjson_addr_valid(addr, addrlen) || !id_valid(addr, addrlen))
        return fail(err, errlen, "address must be host:port");
    json_t *doc;
    int rc = decode(json, len, &doc, err, errlen);
    if (rc < 0) return rc;
    gwrep_expire(t, now);
    gwrep_row *r = NULL;
    for (size_t i = 0; i < t->n && !r; i++)
        if (strlen(t->rows[i].id) == idlen && memcmp(t->rows[i].id, id, idlen) == 0)
            r = &t->rows[i];
    if (!r) {
        if (t->n == GWREP_MAX) {
            size_t stalest = 0;
            for (size_t i = 1; i < t->n; i++)
                if (t->rows[i].at < t->rows[stalest].at) stalest = i;
            remove_row(t, stalest);
        }
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 8;
            t->rows = cairn_realloc(t->rows, t->cap * sizeof(t->rows[0]));
        }
        r = &t->rows[t->n++];
        memset(r, 0, sizeof(*r));
        memcpy(r->id, id, idlen);
    }
    json_decref(r->doc);
    r->doc = doc;
    r->at = now;
    memcpy(r->addr, addr, addrlen);
    r->addr[addrlen] = '\0';
    return 0;
}

size_t gwrep_count(const gwrep_table *t, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n; i++) n += live(&t->rows[i], now);
    return n;
}

json_t *gwrep_json(const gwrep_table *t, int64_t now)
{
    json_t *a = json_array();
    for (size_t i = 0; i < t->n; i++) {
        const gwrep_row *r = &t->rows[i];
        if (!live(r, now)) continue;
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(r->id));
        json_object_set_new(o, "addr", json_string(r->addr));
        json_object_set_new(o, "age_ms", json_integer(now - r->at));
        json_object_update(o, r->doc);
        json_array_append_new(a, o);
    }
    return a;
}
