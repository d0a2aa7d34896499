#include "node/db.h"

#include <stdarg.h>
#include <string.h>

#include "lib/mem.h"
#include "lib/util.h"
#include "node/persist.h"
#include "node/replica.h"

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
    if (e && db_expired(n, e, clock_ms())) {
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

/* Encode argv as a RESP multibulk into the log (the record payload). */
uint64_t db_log(node_t *n, size_t argc, const resp_arg *argv)
{
    if (n->loading) return n->last_lsn;
    cairn_buf *b = persist_record_begin(n->persist);
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
    n->last_lsn++;
    n->last_version = n->cfg_version;
    if (n->replica) replica_local_append(n, n->last_lsn, b->data, b->len);
    persist_record_end(n->persist, n->last_lsn, n->cfg_version);
    return n->last_lsn;
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
