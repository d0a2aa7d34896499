#include "node/db.h"

#include <stdarg.h>
#include <string.h>

#include <inttypes.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "node/persist.h"
#include "node/replica.h"
#include "node/watch.h"

bool db_expired(node_t *n, ks_ent_t *e, int64_t now)
{
    /* While replaying or applying a primary's stream, nothing expires by
     * itself: deletions arrive as logged DELs, so replicas stay identical. */
    if (n->loading) return false;
    int64_t at = ks_ent_expire(e);
    return at != KS_NO_EXPIRE && at <= now;
}

void db_delete_logged(node_t *n, ks_ent_t *e)
{
    size_t klen;
    const char *k = ks_ent_key(e, &klen);
    resp_arg argv[2] = {{"DEL", 3}, {k, klen}};
    db_log(n, 2, argv);
    ks_del_ent(n->ks, e);
}

static ks_ent_t *lookup(client_t *c, const resp_arg *key)
{
    node_t *n = c->node;
    ks_ent_t *e = ks_find(n->ks, key->p, key->len);
    /* the clock is read only for keys with a TTL */
    if (e && ks_ent_expire(e) != KS_NO_EXPIRE && db_expired(n, e, clock_ms())) {
        /* Only a node that may write deletes; a replica just hides it. */
        if (node_writable(n)) {
            db_delete_logged(n, e);
            n->stats.expired_keys++;
        }
        return NULL;
    }
    return e;
}

ks_ent_t *db_lookup_read(client_t *c, const resp_arg *key)
{
    ks_ent_t *e = lookup(c, key);
    if (e) c->node->stats.keyspace_hits++;
    else c->node->stats.keyspace_misses++;
    return e;
}

ks_ent_t *db_lookup_write(client_t *c, const resp_arg *key) { return lookup(c, key); }

static void encode_argv(cairn_buf *b, size_t argc, const resp_arg *argv)
{
    buf_append(b, "*", 1);
    buf_append_u64(b, argc);
    buf_append(b, "\r\n", 2);
    for (size_t i = 0; i < argc; i++) {
        buf_append(b, "$", 1);
        buf_append_u64(b, argv[i].len);
        buf_append(b, "\r\n", 2);
        buf_append(b, argv[i].p, argv[i].len);
        buf_append(b, "\r\n", 2);
    }
}

/* The record under construction gets the next LSN: to the replication
 * stream and the log batch. */
static void commit_record(node_t *n, cairn_buf *b)
{
    n->last_lsn++;
    n->last_version = n->cfg_version;
    if (n->replica) replica_local_append(n, n->last_lsn, b->data, b->len);
    persist_record_end(n->persist, n->last_lsn, n->cfg_version);
}

/* Every keyspace change passes here (see db.h), on every kind of node and
 * while replaying: the one place where watched keys are touched. */
uint64_t db_log(node_t *n, size_t argc, const resp_arg *argv)
{
    if (n->watched_keys) watch_touch_logged(n, argc, argv);
    if (n->loading) return n->last_lsn;
    if (n->txn_open) {
        if (n->txn_writes++ == 0) n->txn_payload = persist_record_begin(n->persist);
        encode_argv(n->txn_payload, argc, argv);
        return n->last_lsn + 1; /* the LSN db_txn_end will give it */
    }
    cairn_buf *b = persist_record_begin(n->persist);
    encode_argv(b, argc, argv);
    commit_record(n, b);
    return n->last_lsn;
}

void db_txn_begin(node_t *n)
{
    n->txn_open = true;
    n->txn_writes = 0;
    n->txn_payload = NULL;
}

void db_txn_end(node_t *n)
{
    n->txn_open = false;
    if (n->txn_writes) commit_record(n, n->txn_payload);
    n->txn_writes = 0;
    n->txn_payload = NULL;
}

int db_apply_record(node_t *n, resp_parser *p, uint64_t lsn, const char *payload, size_t len)
{
    /* First pass: the payload must be whole commands, end to end. */
    size_t off = 0, ncmds = 0;
    resp_parser_reset(p);
    while (off < len) {
        size_t used = 0;
        if (resp_parse_request(p, payload + off, len - off, &used) < 0 || used == 0 ||
            p->argc == 0)
            return CAIRN_ECORRUPT;
        off += used;
        ncmds++;
    }
    if (ncmds == 0) return CAIRN_ECORRUPT;
    client_t *c = n->replay;
    resp_parser_reset(p);
    for (off = 0; off < len;) {
        size_t used = 0;
        resp_parse_request(p, payload + off, len - off, &used);
        off += used;
        c->argc = p->argc;
        c->argv = p->argv;
        client_exec(c);
        if (c->out.len && c->out.data[0] == '-')
            log_warn("applying LSN %" PRIu64 " (%.*s) answered %.*s", lsn,
                     (int)(c->argv[0].len > 32 ? 32 : c->argv[0].len), c->argv[0].p,
                     (int)(c->out.len > 2 ? c->out.len - 2 : 0), c->out.data);
        c->argc = 0;
        c->argv = NULL;
        client_mark(c); /* the replay client's replies are dropped */
    }
    return 0;
}

uint64_t db_log_argv(client_t *c) { return db_log(c->node, c->argc, c->argv); }

uint64_t db_logf(node_t *n, const char *fmt, ...)
{
    resp_arg argv[16];
    char nums[16][24];
    size_t argc = 0;
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f && argc < 16; f++, argc++) {
        switch (*f) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            argv[argc] = (resp_arg){s, strlen(s)};
            break;
        }
        case 'b': {
            const char *s = va_arg(ap, const char *);
            size_t l = va_arg(ap, size_t);
            argv[argc] = (resp_arg){s, l};
            break;
        }
        case 'a':
            argv[argc] = *va_arg(ap, const resp_arg *);
            break;
        case 'i': {
            int64_t v = va_arg(ap, int64_t);
            argv[argc] = (resp_arg){nums[argc], i64_to_str(nums[argc], v)};
            break;
        }
        }
    }
    va_end(ap);
    return db_log(n, argc, argv);
}

size_t db_active_expire(node_t *n, int64_t budget_us)
{
    if (!node_writable(n)) return 0;
    int64_t start = clock_us(), now = clock_ms();
    size_t expired = 0;
    for (int round = 0; round < 1000; round++) {
        size_t sampled = 0, hit = 0, nexp = ks_expires_count(n->ks);
        if (nexp == 0) break;
        size_t want = nexp < 20 ? nexp : 20;
        for (size_t i = 0; i < want; i++) {
            ks_ent_t *e = ks_random_expiring(n->ks, node_rand64);
            sampled++;
            if (e && ks_ent_expire(e) <= now) {
                db_delete_logged(n, e);
                hit++;
            }
        }
        expired += hit;
        /* Like Redis: keep going while more than a quarter of the sample
         * was stale, within the time budget. */
        if (hit * 4 <= sampled || clock_us() - start > budget_us) break;
    }
    n->stats.expired_keys += expired;
    return expired;
}

bool db_over_maxmemory(node_t *n)
{
    return n->cfg.maxmemory > 0 && cairn_mem_used() > (size_t)n->cfg.maxmemory;
}
