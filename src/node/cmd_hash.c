/*
 * cmd_hash.c — hash commands with Redis 7.0's semantics.  A hash whose last
 * field is deleted disappears.  HINCRBYFLOAT logs HSET of its result.
 */
#include <math.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "node/cmd.h"
#include "node/db.h"
#include "node/scan.h"

/* Up to this many fields HSCAN returns the whole hash in one call with
 * cursor 0, as Redis does for its compact encoding. */
#define HSCAN_ALL_MAX 128

static bool wrong_hash(client_t *c, ks_ent_t *e)
{
    if (e && ks_ent_type(e) != KS_HASH) {
        reply_error(&c->out, ERR_WRONGTYPE);
        return true;
    }
    return false;
}

/* The hash at argv[1], created when absent; NULL after replying WRONGTYPE. */
static hobj_t *hash_for_write(client_t *c)
{
    ks_ent_t *e = db_lookup_write(c, &c->argv[1]);
    if (wrong_hash(c, e)) return NULL;
    if (!e) e = ks_add_hash(c->node->ks, c->argv[1].p, c->argv[1].len);
    return ks_ent_hash(e);
}

/* The hash at argv[1] for reading; *missing set when absent. */
static hobj_t *hash_for_read(client_t *c, bool *wrong)
{
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    *wrong = wrong_hash(c, e);
    return (e && !*wrong) ? ks_ent_hash(e) : NULL;
}

void cmd_hset(client_t *c)
{
    bool hmset = c->last_cmd && strcmp(c->last_cmd, "hmset") == 0;
    if (c->argc % 2 == 1) {
        reply_arity(c, hmset ? "hmset" : "hset");
        return;
    }
    hobj_t *h = hash_for_write(c);
    if (!h) return;
    int64_t created = 0;
    for (size_t i = 2; i < c->argc; i += 2)
        created += hobj_set(h, c->argv[i].p, c->argv[i].len, c->argv[i + 1].p, c->argv[i + 1].len);
    resp_arg first = c->argv[0];
    c->argv[0] = (resp_arg){"HSET", 4};
    db_log_argv(c);
    c->argv[0] = first;
    if (hmset) reply_ok(&c->out);
    else reply_int(&c->out, created);
}

void cmd_hsetnx(client_t *c)
{
    hobj_t *h = hash_for_write(c);
    if (!h) return;
    const char *v;
    size_t vl;
    if (hobj_get(h, c->argv[2].p, c->argv[2].len, &v, &vl)) {
        reply_int(&c->out, 0);
        return;
    }
    hobj_set(h, c->argv[2].p, c->argv[2].len, c->argv[3].p, c->argv[3].len);
    db_logf(c->node, "saaa", "HSET", &c->argv[1], &c->argv[2], &c->argv[3]);
    reply_int(&c->out, 1);
}

void cmd_hget(client_t *c)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (wrong) return;
    const char *v;
    size_t vl;
    if (h && hobj_get(h, c->argv[2].p, c->argv[2].len, &v, &vl)) reply_bulk(&c->out, v, vl);
    else reply_null(&c->out, c->proto);
}

void cmd_hmget(client_t *c)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (wrong) return;
    reply_array(&c->out, c->argc - 2);
    for (size_t i = 2; i < c->argc; i++) {
        const char *v;
        size_t vl;
        if (h && hobj_get(h, c->argv[i].p, c->argv[i].len, &v, &vl)) reply_bulk(&c->out, v, vl);
        else reply_null(&c->out, c->proto);
    }
}

void cmd_hdel(client_t *c)
{
    ks_ent_t *e = db_lookup_write(c, &c->argv[1]);
    if (!e) {
        reply_int(&c->out, 0);
        return;
    }
    if (wrong_hash(c, e)) return;
    hobj_t *h = ks_ent_hash(e);
    int64_t deleted = 0;
    for (size_t i = 2; i < c->argc; i++) {
        if (hobj_del(h, c->argv[i].p, c->argv[i].len)) deleted++;
        if (hobj_len(h) == 0) break;
    }
    if (deleted) {
        db_log_argv(c);
        if (hobj_len(h) == 0) ks_del_ent(c->node->ks, e);
    }
    reply_int(&c->out, deleted);
}

enum { ALL_FIELDS = 1, ALL_VALUES = 2 };

struct hall_ctx {
    cairn_buf *out;
    int what;
};

static void hall_cb(void *arg, const char *f, size_t fl, const char *v, size_t vl)
{
    struct hall_ctx *x = arg;
    if (x->what & ALL_FIELDS) reply_bulk(x->out, f, fl);
    if (x->what & ALL_VALUES) reply_bulk(x->out, v, vl);
}

static void hgetall_generic(client_t *c, int what)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (wrong) return;
    size_t n = h ? hobj_len(h) : 0;
    if (what == (ALL_FIELDS | ALL_VALUES)) reply_map(&c->out, c->proto, n);
    else reply_array(&c->out, n);
    if (!h) return;
    struct hall_ctx x = {&c->out, what};
    hobj_foreach(h, hall_cb, &x);
}

void cmd_hgetall(client_t *c) { hgetall_generic(c, ALL_FIELDS | ALL_VALUES); }
void cmd_hkeys(client_t *c) { hgetall_generic(c, ALL_FIELDS); }
void cmd_hvals(client_t *c) { hgetall_generic(c, ALL_VALUES); }

void cmd_hlen(client_t *c)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (!wrong) reply_int(&c->out, h ? (int64_t)hobj_len(h) : 0);
}

void cmd_hexists(client_t *c)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (wrong) return;
    const char *v;
    size_t vl;
    reply_int(&c->out, h && hobj_get(h, c->argv[2].p, c->argv[2].len, &v, &vl));
}

void cmd_hstrlen(client_t *c)
{
    bool wrong;
    hobj_t *h = hash_for_read(c, &wrong);
    if (wrong) return;
    const char *v;
    size_t vl = 0;
    if (!h || !hobj_get(h, c->argv[2].p, c->argv[2].len, &v, &vl)) vl = 0;
    reply_int(&c->out, (int64_t)vl);
}

void cmd_hincrby(client_t *c)
{
    int64_t incr, v = 0;
    if (!arg_i64(c, &c->argv[3], &incr, NULL)) return;
    hobj_t *h = hash_for_write(c);
    if (!h) return;
    const char *s;
    size_t sl;
    if (hobj_get(h, c->argv[2].p, c->argv[2].len, &s, &sl) && !str_to_i64(s, sl, &v)) {
        reply_error(&c->out, "ERR hash value is not an integer");
        return;
    }
    if ((incr < 0 && v < 0 && incr < INT64_MIN - v) || (incr > 0 && v > 0 && incr > INT64_MAX - v)) {
        reply_error(&c->out, ERR_OVERFLOW);
        return;
    }
    v += incr;
    char buf[24];
    size_t bl = i64_to_str(buf, v);
    hobj_set(h, c->argv[2].p, c->argv[2].len, buf, bl);
    db_logf(c->node, "saab", "HSET", &c->argv[1], &c->argv[2], buf, bl);
    reply_int(&c->out, v);
}

void cmd_hincrbyfloat(client_t *c)
{
    long double incr, v = 0;
    if (!str_to_ldouble(c->argv[3].p, c->argv[3].len, &incr)) {
        reply_error(&c->out, ERR_NOTFLOAT);
        return;
    }
    if (isnan(incr) || isinf(incr)) {
        reply_error(&c->out, "ERR value is NaN or Infinity");
        return;
    }
    hobj_t *h = hash_for_write(c);
    if (!h) return;
    const char *s;
    size_t sl;
    if (hobj_get(h, c->argv[2].p, c->argv[2].len, &s, &sl) && !str_to_ldouble(s, sl, &v)) {
        reply_error(&c->out, "ERR hash value is not a float");
        return;
    }
    v += incr;
    char buf[5200];
    size_t bl = (isnan(v) || isinf(v)) ? 0 : ldouble_to_str(buf, sizeof(buf), v);
    if (bl == 0) {
        reply_error(&c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    hobj_set(h, c->argv[2].p, c->argv[2].len, buf, bl);
    db_logf(c->node, "saab", "HSET", &c->argv[1], &c->argv[2], buf, bl);
    reply_bulk(&c->out, buf, bl);
}

struct hscan_ctx {
    cairn_buf *out;
    const resp_arg *pat;
    size_t n;
};

static void hscan_cb(void *arg, const char *f, size_t fl, const char *v, size_t vl)
{
    struct hscan_ctx *x = arg;
    if (x->pat && !glob_match(x->pat->p, x->pat->len, f, fl, false)) return;
    reply_bulk(x->out, f, fl);
    reply_bulk(x->out, v, vl);
    x->n++;
}

void cmd_hscan(client_t *c)
{
    uint64_t cursor;
    if (!scan_parse_cursor(c, 2, &cursor)) return;
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        buf_append_str(&c->out, "*2\r\n$1\r\n0\r\n*0\r\n");
        return;
    }
    if (wrong_hash(c, e)) return;
    scan_opts o;
    if (!scan_parse(c, 2, false, &o)) return;
    hobj_t *h = ks_ent_hash(e);
    cairn_buf items;
    buf_init(&items);
    struct hscan_ctx x = {&items, o.pattern, 0};
    if (hobj_len(h) <= HSCAN_ALL_MAX) {
        hobj_foreach(h, hscan_cb, &x);
        cursor = 0;
    } else {
        int64_t iters = o.count * 10;
        do {
            cursor = hobj_scan(h, cursor, hscan_cb, &x);
        } while (cursor && iters-- > 0 && x.n < (size_t)o.count);
    }
    reply_array(&c->out, 2);
    reply_bulk_u64(&c->out, cursor);
    reply_array(&c->out, x.n * 2);
    buf_append(&c->out, items.data, items.len);
    buf_close(&items);
}
