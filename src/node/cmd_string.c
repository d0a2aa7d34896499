/*
 * cmd_string.c — string commands, with Redis 7.0's semantics, replies and
 * order of checks (syntax, then lookup, then values).
 *
 * What each write logs (db.h): relative expiries become absolute
 * (SET ... PXAT t, PEXPIREAT), conditional forms become their effect
 * (SETNX -> SET, GETDEL -> DEL), INCRBYFLOAT becomes SET of its result.
 */
#include <math.h>
#include <string.h>

#include "lib/reply.h"
#include "lib/util.h"
#include "node/cmd.h"
#include "node/db.h"

#define SET_NX (1u << 0)
#define SET_XX (1u << 1)
#define SET_GET (1u << 2)
#define SET_KEEPTTL (1u << 3)
#define SET_PERSIST (1u << 4)
#define SET_EX (1u << 5)
#define SET_PX (1u << 6)
#define SET_EXAT (1u << 7)
#define SET_PXAT (1u << 8)
#define SET_ANY_EXPIRE (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

enum { FOR_SET, FOR_GETEX };

/* True (after replying WRONGTYPE) when e exists and is not a string. */
static bool wrong_string(client_t *c, ks_ent_t *e)
{
    if (e && ks_ent_type(e) != KS_STRING) {
        reply_error(&c->out, ERR_WRONGTYPE);
        return true;
    }
    return false;
}

/* Redis's parseExtendedStringArgumentsOrReply. */
static bool parse_set_opts(client_t *c, size_t start, int kind, unsigned *flags,
                           const resp_arg **expire)
{
    *flags = 0;
    *expire = NULL;
    for (size_t j = start; j < c->argc; j++) {
        const resp_arg *a = &c->argv[j];
        bool has_next = j + 1 < c->argc;
        unsigned f = *flags;
        if (arg_eq(a, "nx") && !(f & SET_XX) && kind == FOR_SET) {
            *flags |= SET_NX;
        } else if (arg_eq(a, "xx") && !(f & SET_NX) && kind == FOR_SET) {
            *flags |= SET_XX;
        } else if (arg_eq(a, "get") && kind == FOR_SET) {
            *flags |= SET_GET;
        } else if (arg_eq(a, "keepttl") && !(f & SET_PERSIST) && !(f & SET_ANY_EXPIRE) &&
                   kind == FOR_SET) {
            *flags |= SET_KEEPTTL;
        } else if (arg_eq(a, "persist") && kind == FOR_GETEX && !(f & SET_ANY_EXPIRE) &&
                   !(f & SET_KEEPTTL)) {
            *flags |= SET_PERSIST;
        } else if (has_next && !(f & (SET_KEEPTTL | SET_PERSIST)) &&
                   ((arg_eq(a, "ex") && !(f & (SET_EXAT | SET_PX | SET_PXAT))) ||
                    (arg_eq(a, "px") && !(f & (SET_EX | SET_EXAT | SET_PXAT))) ||
                    (arg_eq(a, "exat") && !(f & (SET_EX | SET_PX | SET_PXAT))) ||
                    (arg_eq(a, "pxat") && !(f & (SET_EX | SET_EXAT | SET_PX))))) {
            *flags |= arg_eq(a, "ex") ? SET_EX : arg_eq(a, "px") ? SET_PX
                                            : arg_eq(a, "exat") ? SET_EXAT : SET_PXAT;
            *expire = &c->argv[++j];
        } else {
            reply_error(&c->out, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}

/* Redis's getExpireMillisecondsOrReply: absolute unix ms in *at. */
static bool expire_ms(client_t *c, const resp_arg *a, unsigned flags, const char *cmd, int64_t *at)
{
    int64_t v;
    if (!arg_i64(c, a, &v, NULL)) return false;
    bool seconds = flags & (SET_EX | SET_EXAT);
    if (v <= 0 || (seconds && v > INT64_MAX / 1000)) goto bad;
    if (seconds) v *= 1000;
    if (flags & (SET_EX | SET_PX)) {
        int64_t now = clock_ms();
        if (v > INT64_MAX - now) goto bad;
        v += now;
    }
    *at = v;
    return true;
bad:
    reply_errorf(&c->out, "ERR invalid expire time in '%s' command", cmd);
    return false;
}

/* Log SET key value [PXAT at | KEEPTTL]. */
static void log_set(node_t *n, const resp_arg *key, const resp_arg *val, int64_t expire)
{
    if (expire == KS_KEEPTTL) db_logf(n, "saas", "SET", key, val, "KEEPTTL");
    else if (expire != KS_NO_EXPIRE) db_logf(n, "saasi", "SET", key, val, "PXAT", expire);
    else db_logf(n, "saa", "SET", key, val);
}

static void set_generic(client_t *c, unsigned flags, const resp_arg *key, const resp_arg *val,
                        const resp_arg *expire, const char *cmd, bool reply_int_result)
{
    node_t *n = c->node;
    int64_t at = KS_NO_EXPIRE;
    if (expire && !expire_ms(c, expire, flags, cmd, &at)) return;
    ks_ent_t *e = db_lookup_write(c, key);
    if (flags & SET_GET) {
        if (wrong_string(c, e)) return;
        if (!e) {
            reply_null(&c->out, c->proto);
        } else {
            size_t l;
            const char *v = ks_ent_str(e, &l);
            reply_bulk(&c->out, v, l);
        }
    }
    if (((flags & SET_NX) && e) || ((flags & SET_XX) && !e)) {
        if (reply_int_result) reply_int(&c->out, 0);
        else if (!(flags & SET_GET)) reply_null(&c->out, c->proto);
        return;
    }
    if (flags & SET_KEEPTTL) at = KS_KEEPTTL;
    ks_set_str(n->ks, key->p, key->len, val->p, val->len, at);
    log_set(n, key, val, at);
    if (reply_int_result) reply_int(&c->out, 1);
    else if (!(flags & SET_GET)) reply_ok(&c->out);
}

void cmd_set(client_t *c)
{
    unsigned flags;
    const resp_arg *expire;
    if (!parse_set_opts(c, 3, FOR_SET, &flags, &expire)) return;
    set_generic(c, flags, &c->argv[1], &c->argv[2], expire, "set", false);
}

void cmd_setnx(client_t *c) { set_generic(c, SET_NX, &c->argv[1], &c->argv[2], NULL, "setnx", true); }

void cmd_setex(client_t *c)
{
    set_generic(c, SET_EX, &c->argv[1], &c->argv[3], &c->argv[2], "setex", false);
}

void cmd_psetex(client_t *c)
{
    set_generic(c, SET_PX, &c->argv[1], &c->argv[3], &c->argv[2], "psetex", false);
}

void cmd_getset(client_t *c) { set_generic(c, SET_GET, &c->argv[1], &c->argv[2], NULL, "getset", false); }

void cmd_get(client_t *c)
{
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        reply_null(&c->out, c->proto);
        return;
    }
    if (wrong_string(c, e)) return;
    size_t l;
    const char *v = ks_ent_str(e, &l);
    reply_bulk(&c->out, v, l);
}

void cmd_getdel(client_t *c)
{
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        reply_null(&c->out, c->proto);
        return;
    }
    if (wrong_string(c, e)) return;
    size_t l;
    const char *v = ks_ent_str(e, &l);
    reply_bulk(&c->out, v, l);
    db_delete_logged(c->node, e);
}

void cmd_getex(client_t *c)
{
    node_t *n = c->node;
    unsigned flags;
    const resp_arg *expire;
    if (!parse_set_opts(c, 2, FOR_GETEX, &flags, &expire)) return;
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        reply_null(&c->out, c->proto);
        return;
    }
    if (wrong_string(c, e)) return;
    int64_t at = KS_NO_EXPIRE;
    if (expire && !expire_ms(c, expire, flags, "getex", &at)) return;
    size_t l;
    const char *v = ks_ent_str(e, &l);
    reply_bulk(&c->out, v, l);
    if ((flags & (SET_EXAT | SET_PXAT)) && at <= clock_ms() && !n->loading) {
        db_delete_logged(n, e);
    } else if (expire) {
        ks_set_expire(n->ks, e, at);
        db_logf(n, "sai", "PEXPIREAT", &c->argv[1], at);
    } else if ((flags & SET_PERSIST) && ks_ent_expire(e) != KS_NO_EXPIRE) {
        ks_set_expire(n->ks, e, KS_NO_EXPIRE);
        db_logf(n, "sa", "PERSIST", &c->argv[1]);
    }
}

void cmd_mget(client_t *c)
{
    reply_array(&c->out, c->argc - 1);
    for (size_t i = 1; i < c->argc; i++) {
        ks_ent_t *e = db_lookup_read(c, &c->argv[i]);
        if (!e || ks_ent_type(e) != KS_STRING) {
            reply_null(&c->out, c->proto);
        } else {
            size_t l;
            const char *v = ks_ent_str(e, &l);
            reply_bulk(&c->out, v, l);
        }
    }
}

static void mset_generic(client_t *c, bool nx)
{
    node_t *n = c->node;
    if (c->argc % 2 == 0) {
        reply_arity(c, nx ? "msetnx" : "mset");
        return;
    }
    if (nx) {
        for (size_t i = 1; i < c->argc; i += 2)
            if (db_lookup_write(c, &c->argv[i])) {
                reply_int(&c->out, 0);
                return;
            }
    }
    for (size_t i = 1; i < c->argc; i += 2)
        ks_set_str(n->ks, c->argv[i].p, c->argv[i].len, c->argv[i + 1].p, c->argv[i + 1].len,
                   KS_NO_EXPIRE);
    resp_arg first = c->argv[0];
    c->argv[0] = (resp_arg){"MSET", 4};
    db_log_argv(c);
    c->argv[0] = first;
    if (nx) reply_int(&c->out, 1);
    else reply_ok(&c->out);
}

void cmd_mset(client_t *c) { mset_generic(c, false); }
void cmd_msetnx(client_t *c) { mset_generic(c, true); }

/* Redis's checkStringLength: the result may not exceed proto-max-bulk-len
 * (nor what one entry can hold). */
static bool check_len(client_t *c, int64_t size, int64_t add)
{
    int64_t total;
    int64_t max = c->node->cfg.proto_max_bulk_len;
    if (max > (int64_t)UINT32_MAX - 64) max = (int64_t)UINT32_MAX - 64;
    if (__builtin_add_overflow(size, add, &total) || total > max) {
        reply_error(&c->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
        return false;
    }
    return true;
}

void cmd_append(client_t *c)
{
    node_t *n = c->node;
    const resp_arg *key = &c->argv[1], *val = &c->argv[2];
    ks_ent_t *e = db_lookup_write(c, key);
    if (!e) {
        ks_set_str(n->ks, key->p, key->len, val->p, val->len, KS_NO_EXPIRE);
        db_log_argv(c);
        reply_int(&c->out, (int64_t)val->len);
        return;
    }
    if (wrong_string(c, e)) return;
    size_t l;
    ks_ent_str(e, &l);
    if (!check_len(c, (int64_t)l, (int64_t)val->len)) return;
    if (val->len) {
        e = ks_resize_str(n->ks, e, l + val->len);
        memcpy(ks_ent_str_mut(e) + l, val->p, val->len);
    }
    db_log_argv(c);
    reply_int(&c->out, (int64_t)(l + val->len));
}

void cmd_strlen(client_t *c)
{
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (wrong_string(c, e)) return;
    size_t l = 0;
    if (e) ks_ent_str(e, &l);
    reply_int(&c->out, (int64_t)l);
}

void cmd_getrange(client_t *c)
{
    int64_t start, end;
    if (!arg_i64(c, &c->argv[2], &start, NULL) || !arg_i64(c, &c->argv[3], &end, NULL)) return;
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        reply_bulk(&c->out, "", 0);
        return;
    }
    if (wrong_string(c, e)) return;
    size_t len;
    const char *s = ks_ent_str(e, &len);
    int64_t n = (int64_t)len;
    if (start < 0 && end < 0 && start > end) {
        reply_bulk(&c->out, "", 0);
        return;
    }
    if (start < 0) start = n + start;
    if (end < 0) end = n + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= n) end = n - 1;
    if (start > end || n == 0) reply_bulk(&c->out, "", 0);
    else reply_bulk(&c->out, s + start, (size_t)(end - start + 1));
}

void cmd_setrange(client_t *c)
{
    node_t *n = c->node;
    int64_t off;
    const resp_arg *key = &c->argv[1], *val = &c->argv[3];
    if (!arg_i64(c, &c->argv[2], &off, NULL)) return;
    if (off < 0) {
        reply_error(&c->out, "ERR offset is out of range");
        return;
    }
    ks_ent_t *e = db_lookup_write(c, key);
    size_t olen = 0;
    if (!e) {
        if (val->len == 0) {
            reply_int(&c->out, 0);
            return;
        }
        if (!check_len(c, off, (int64_t)val->len)) return;
        e = ks_set_str(n->ks, key->p, key->len, "", 0, KS_NO_EXPIRE);
    } else {
        if (wrong_string(c, e)) return;
        ks_ent_str(e, &olen);
        if (val->len == 0) {
            reply_int(&c->out, (int64_t)olen);
            return;
        }
        if (!check_len(c, off, (int64_t)val->len)) return;
    }
    size_t need = (size_t)off + val->len;
    if (need > olen) e = ks_resize_str(n->ks, e, need);
    memcpy(ks_ent_str_mut(e) + off, val->p, val->len);
    db_log_argv(c);
    size_t l;
    ks_ent_str(e, &l);
    reply_int(&c->out, (int64_t)l);
}

static void incr_generic(client_t *c, int64_t incr)
{
    node_t *n = c->node;
    const resp_arg *key = &c->argv[1];
    ks_ent_t *e = db_lookup_write(c, key);
    if (wrong_string(c, e)) return;
    int64_t v = 0;
    if (e) {
        size_t l;
        const char *s = ks_ent_str(e, &l);
        if (!str_to_i64(s, l, &v)) {
            reply_error(&c->out, ERR_NOTINT);
            return;
        }
    }
    if ((incr < 0 && v < 0 && incr < INT64_MIN - v) || (incr > 0 && v > 0 && incr > INT64_MAX - v)) {
        reply_error(&c->out, ERR_OVERFLOW);
        return;
    }
    v += incr;
    char buf[24];
    size_t bl = i64_to_str(buf, v);
    ks_set_str(n->ks, key->p, key->len, buf, bl, KS_KEEPTTL);
    resp_arg val = {buf, bl};
    log_set(n, key, &val, KS_KEEPTTL);
    reply_int(&c->out, v);
}

void cmd_incr(client_t *c) { incr_generic(c, 1); }
void cmd_decr(client_t *c) { incr_generic(c, -1); }

void cmd_incrby(client_t *c)
{
    int64_t v;
    if (arg_i64(c, &c->argv[2], &v, NULL)) incr_generic(c, v);
}

void cmd_decrby(client_t *c)
{
    int64_t v;
    if (!arg_i64(c, &c->argv[2], &v, NULL)) return;
    if (v == INT64_MIN) {
        reply_error(&c->out, "ERR decrement would overflow");
        return;
    }
    incr_generic(c, -v);
}

void cmd_incrbyfloat(client_t *c)
{
    node_t *n = c->node;
    const resp_arg *key = &c->argv[1];
    ks_ent_t *e = db_lookup_write(c, key);
    if (wrong_string(c, e)) return;
    long double v = 0, incr;
    if (e) {
        size_t l;
        const char *s = ks_ent_str(e, &l);
        if (!str_to_ldouble(s, l, &v)) {
            reply_error(&c->out, ERR_NOTFLOAT);
            return;
        }
    }
    if (!str_to_ldouble(c->argv[2].p, c->argv[2].len, &incr)) {
        reply_error(&c->out, ERR_NOTFLOAT);
        return;
    }
    v += incr;
    if (isnan(v) || isinf(v)) {
        reply_error(&c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    char buf[5200];
    size_t bl = ldouble_to_str(buf, sizeof(buf), v);
    if (bl == 0) {
        reply_error(&c->out, "ERR increment would produce NaN or Infinity");
        return;
    }
    ks_set_str(n->ks, key->p, key->len, buf, bl, KS_KEEPTTL);
    resp_arg val = {buf, bl};
    log_set(n, key, &val, KS_KEEPTTL);
    reply_bulk(&c->out, buf, bl);
}
