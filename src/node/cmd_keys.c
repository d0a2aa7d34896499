/*
 * cmd_keys.c — generic key commands: DEL EXISTS TYPE, the EXPIRE family,
 * TTL, PERSIST, RENAME, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL.
 * Semantics and error texts follow Redis 7.0 (db.c, expire.c).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "node/cmd.h"
#include "node/db.h"
#include "node/scan.h"

void cmd_del(client_t *c)
{
    node_t *n = c->node;
    int64_t deleted = 0;
    for (size_t i = 1; i < c->argc; i++) {
        ks_ent_t *e = db_lookup_write(c, &c->argv[i]);
        if (!e) continue;
        db_delete_logged(n, e);
        deleted++;
    }
    reply_int(&c->out, deleted);
}

void cmd_exists(client_t *c)
{
    int64_t count = 0;
    for (size_t i = 1; i < c->argc; i++)
        if (db_lookup_read(c, &c->argv[i])) count++;
    reply_int(&c->out, count);
}

static const char *type_name(ks_ent_t *e)
{
    if (!e) return "none";
    return ks_ent_type(e) == KS_HASH ? "hash" : "string";
}

void cmd_type(client_t *c) { reply_simple(&c->out, type_name(db_lookup_read(c, &c->argv[1]))); }

#define EXP_NX 1
#define EXP_XX 2
#define EXP_GT 4
#define EXP_LT 8

static void expire_generic(client_t *c, int64_t basetime, bool seconds)
{
    node_t *n = c->node;
    int flags = 0;
    for (size_t j = 3; j < c->argc; j++) {
        const resp_arg *a = &c->argv[j];
        if (arg_eq(a, "nx")) flags |= EXP_NX;
        else if (arg_eq(a, "xx")) flags |= EXP_XX;
        else if (arg_eq(a, "gt")) flags |= EXP_GT;
        else if (arg_eq(a, "lt")) flags |= EXP_LT;
        else {
            reply_errorf(&c->out, "ERR Unsupported option %.*s", (int)a->len, a->p);
            return;
        }
    }
    if ((flags & EXP_NX) && (flags & (EXP_XX | EXP_GT | EXP_LT))) {
        reply_error(&c->out, "ERR NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & EXP_GT) && (flags & EXP_LT)) {
        reply_error(&c->out, "ERR GT and LT options at the same time are not compatible");
        return;
    }
    int64_t when;
    if (!arg_i64(c, &c->argv[2], &when, NULL)) return;
    if (seconds) {
        if (when > INT64_MAX / 1000 || when < INT64_MIN / 1000) goto bad;
        when *= 1000;
    }
    if (when > INT64_MAX - basetime) goto bad;
    when += basetime;
    ks_ent_t *e = db_lookup_write(c, &c->argv[1]);
    if (!e) {
        reply_int(&c->out, 0);
        return;
    }
    if (flags) {
        int64_t cur = ks_ent_expire(e);
        bool none = cur == KS_NO_EXPIRE;
        if (((flags & EXP_NX) && !none) || ((flags & EXP_XX) && none) ||
            ((flags & EXP_GT) && (none || when <= cur)) || ((flags & EXP_LT) && !none && when >= cur)) {
            reply_int(&c->out, 0);
            return;
        }
    }
    if (when <= clock_ms() && !n->loading) {
        db_delete_logged(n, e);
    } else {
        ks_set_expire(n->ks, e, when);
        db_logf(n, "sai", "PEXPIREAT", &c->argv[1], when);
    }
    reply_int(&c->out, 1);
    return;
bad:
    reply_errorf(&c->out, "ERR invalid expire time in '%s' command", c->last_cmd);
}

void cmd_expire(client_t *c) { expire_generic(c, clock_ms(), true); }
void cmd_pexpire(client_t *c) { expire_generic(c, clock_ms(), false); }
void cmd_expireat(client_t *c) { expire_generic(c, 0, true); }
void cmd_pexpireat(client_t *c) { expire_generic(c, 0, false); }

static void ttl_generic(client_t *c, bool ms, bool abs)
{
    ks_ent_t *e = db_lookup_read(c, &c->argv[1]);
    if (!e) {
        reply_int(&c->out, -2);
        return;
    }
    int64_t at = ks_ent_expire(e);
    if (at == KS_NO_EXPIRE) {
        reply_int(&c->out, -1);
        return;
    }
    if (abs) {
        reply_int(&c->out, ms ? at : at / 1000);
        return;
    }
    int64_t ttl = at - clock_ms();
    if (ttl < 0) ttl = 0;
    reply_int(&c->out, ms ? ttl : (ttl + 500) / 1000);
}

void cmd_ttl(client_t *c) { ttl_generic(c, false, false); }
void cmd_pttl(client_t *c) { ttl_generic(c, true, false); }
void cmd_expiretime(client_t *c) { ttl_generic(c, false, true); }
void cmd_pexpiretime(client_t *c) { ttl_generic(c, true, true); }

void cmd_persist(client_t *c)
{
    ks_ent_t *e = db_lookup_write(c, &c->argv[1]);
    if (!e || ks_ent_expire(e) == KS_NO_EXPIRE) {
        reply_int(&c->out, 0);
        return;
    }
    ks_set_expire(c->node->ks, e, KS_NO_EXPIRE);
    db_log_argv(c);
    reply_int(&c->out, 1);
}

static void rename_generic(client_t *c, bool nx)
{
    node_t *n = c->node;
    const resp_arg *src = &c->argv[1], *dst = &c->argv[2];
    ks_ent_t *e = db_lookup_write(c, src);
    if (!e) {
        reply_error(&c->out, ERR_NOKEY);
        return;
    }
    if (src->len == dst->len && memcmp(src->p, dst->p, src->len) == 0) {
        if (nx) reply_int(&c->out, 0);
        else reply_ok(&c->out);
        return;
    }
    ks_ent_t *d = db_lookup_write(c, dst);
    if (d) {
        if (nx) {
            reply_int(&c->out, 0);
            return;
        }
        ks_del_ent(n->ks, d);
    }
    e = ks_find(n->ks, src->p, src->len); /* the lookups may have moved it */
    ks_rename(n->ks, e, dst->p, dst->len);
    db_logf(n, "saa", "RENAME", src, dst);
    if (nx) reply_int(&c->out, 1);
    else reply_ok(&c->out);
}

void cmd_rename(client_t *c) { rename_generic(c, false); }
void cmd_renamenx(client_t *c) { rename_generic(c, true); }

struct keys_ctx {
    client_t *c;
    const resp_arg *pat;
    bool all;
    int64_t now;
    size_t count;
};

static void keys_cb(void *arg, ks_ent_t *e)
{
    struct keys_ctx *k = arg;
    int64_t at = ks_ent_expire(e);
    if (at != KS_NO_EXPIRE && at <= k->now) return;
    size_t kl;
    const char *key = ks_ent_key(e, &kl);
    if (!k->all && !glob_match(k->pat->p, k->pat->len, key, kl, false)) return;
    reply_bulk(&k->c->out, key, kl);
    k->count++;
}

void cmd_keys(client_t *c)
{
    /* The count is not known until the walk ends: reserve the header's
     * place and write it afterwards. */
    size_t hdr_at = c->out.len;
    char hdr[32];
    buf_reserve(&c->out, 24); /* placeholder, fixed below */
    c->out.len += 24;
    struct keys_ctx k = {c, &c->argv[1], c->argv[1].len == 1 && c->argv[1].p[0] == '*',
                         clock_ms(), 0};
    ks_foreach(c->node->ks, keys_cb, &k);
    size_t hl = 0;
    hdr[hl++] = '*';
    hl += u64_to_str(hdr + hl, k.count);
    hdr[hl++] = '\r';
    hdr[hl++] = '\n';
    memmove(c->out.data + hdr_at + hl, c->out.data + hdr_at + 24, c->out.len - hdr_at - 24);
    memcpy(c->out.data + hdr_at, hdr, hl);
    c->out.len -= 24 - hl;
}

void cmd_dbsize(client_t *c) { reply_int(&c->out, (int64_t)ks_size(c->node->ks)); }

void cmd_randomkey(client_t *c)
{
    node_t *n = c->node;
    /* Expired keys met on the way are deleted, as Redis does; bounded so a
     * keyspace of only expired keys cannot spin. */
    for (int tries = 0; tries < 100; tries++) {
        ks_ent_t *e = ks_random(n->ks, node_rand64);
        if (!e) break;
        if (db_expired(n, e, clock_ms())) {
            db_delete_logged(n, e);
            n->stats.expired_keys++;
            continue;
        }
        size_t kl;
        const char *k = ks_ent_key(e, &kl);
        reply_bulk(&c->out, k, kl);
        return;
    }
    reply_null(&c->out, c->proto);
}

void cmd_flushall(client_t *c)
{
    if (c->argc > 2 || (c->argc == 2 && !arg_eq(&c->argv[1], "sync") && !arg_eq(&c->argv[1], "async"))) {
        reply_error(&c->out, ERR_SYNTAX);
        return;
    }
    /* Logged first: the log hook decides which watched keys this changes
     * by looking at the keyspace before it is emptied (watch.h). */
    db_logf(c->node, "s", "FLUSHALL");
    ks_flush(c->node->ks);
    reply_ok(&c->out);
}

/* ---- SCAN ---- */

struct scan_item {
    ks_ent_t *e;
};

struct scan_ctx {
    ks_ent_t **items;
    size_t n, cap;
};

static void scan_collect(void *arg, ks_ent_t *e)
{
    struct scan_ctx *s = arg;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 32;
        s->items = cairn_realloc(s->items, s->cap * sizeof(*s->items));
    }
    s->items[s->n++] = e;
}

void cmd_scan(client_t *c)
{
    node_t *n = c->node;
    scan_opts o;
    if (!scan_parse(c, 1, true, &o)) return;
    struct scan_ctx s = {0};
    uint64_t cursor = o.cursor;
    int64_t iters = o.count * 10;
    do {
        cursor = ks_scan(n->ks, cursor, scan_collect, &s);
    } while (cursor && iters-- > 0 && s.n < (size_t)o.count);
    /* Filter after the walk (deleting expired keys would disturb it). Keys
     * are copied out first: a deletion may move other entries. */
    int64_t now = clock_ms();
    cairn_buf keys;
    buf_init(&keys);
    size_t nk = 0;
    for (size_t i = 0; i < s.n; i++) {
        ks_ent_t *e = s.items[i];
        size_t kl;
        const char *k = ks_ent_key(e, &kl);
        if (o.pattern && !glob_match(o.pattern->p, o.pattern->len, k, kl, false)) continue;
        if (o.type && !arg_eq(o.type, type_name(e))) continue;
        int64_t at = ks_ent_expire(e);
        if (at != KS_NO_EXPIRE && at <= now && !n->loading) continue;
        reply_bulk(&keys, k, kl);
        nk++;
    }
    cairn_free(s.items);
    reply_array(&c->out, 2);
    reply_bulk_u64(&c->out, cursor);
    reply_array(&c->out, nk);
    buf_append(&c->out, keys.data, keys.len);
    buf_close(&keys);
}
