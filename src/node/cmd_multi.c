/*
 * cmd_multi.c — transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.
 *
 * A client's life (Redis 7.0's multi.c, flags on c->flags):
 *
 *            MULTI                 EXEC (runs the queue, one log record)
 *   normal --------> CLIENT_MULTI ------------------------------------> normal
 *     ^               |  |   \  DISCARD / EXEC that aborts            |
 *     |               |  |    `-----------------------------------------'
 *     |  other command: client_exec() admits it (arity, auth, no-multi,
 *     |  replica gate, maxmemory) then multi_queue() -> +QUEUED; a refusal
 *     |  replies its error and sets CLIENT_DIRTY_EXEC (-> EXECABORT).
 *     |  A watched key changing sets CLIENT_DIRTY_CAS (-> null array).
 *     `-- WATCH k...: watch.c records the keys until EXEC/DISCARD/UNWATCH/close
 *
 * EXEC is gated like the commands it holds (Redis checks EXEC with the
 * union of the queued commands' flags): on a node that may not write now
 * (NOTPRIMARY, TRYAGAIN, CLUSTERDOWN — replica_admit) or over maxmemory
 * with a denyoom command queued, EXEC answers
 *   -EXECABORT Transaction discarded because of: <the error a single
 *    command would get>
 * and nothing runs.  Otherwise every queued command runs back to back
 * (nothing else can run in between: one thread), each reply an element of
 * EXEC's array, runtime errors included.
 *
 * Atomic in the log and on the secondaries: the writes of one EXEC are
 * logged as ONE record (db_txn_begin/_end, payload format in db.h), which
 * takes one LSN, is checksummed as a whole, and is streamed and applied as
 * one replication entry.  A crash, a torn tail or a failover can drop the
 * whole transaction (only if it was never acknowledged) but never half of
 * it.  EXEC's reply is held until that LSN commits, like any write's
 * (invariant 3: client_mark after the command).
 *
 * Memory.  Queueing copies the request (argv points into a read buffer that
 * is reused) into one allocation per command.  A client's queue may hold at
 * most multi_limit() bytes (counted with the argv arrays): half of
 * proto-max-bulk-len, so the transaction's log record always fits in one
 * bulk of the replication stream (logged forms can be somewhat longer
 * than the requests: absolute expiry times, lazy-expiry DELs), and no more
 * than client-output-buffer-limit when that is set.  Past it the queue is freed,
 * the command gets an error and EXEC aborts.  Queued memory is allocated
 * through cairn_malloc, so maxmemory sees it too; over maxmemory every
 * command but EXEC/DISCARD/QUIT is refused inside MULTI (as in Redis).
 */
#include <string.h>

#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/wal.h"
#include "node/cmd.h"
#include "node/db.h"
#include "node/replica.h"
#include "node/watch.h"

static size_t multi_limit(const node_t *n)
{
    size_t limit = (size_t)n->cfg.proto_max_bulk_len / 2;
    size_t obl = (size_t)n->cfg.client_output_buffer_limit;
    if (obl && obl < limit) limit = obl;
    if (limit > WAL_MAX_PAYLOAD / 4) limit = WAL_MAX_PAYLOAD / 4; /* room for the logged forms */
    return limit;
}

static void free_queue(client_t *c)
{
    for (size_t i = 0; i < c->multi.count; i++) cairn_free(c->multi.cmds[i].argv);
    cairn_free(c->multi.cmds);
    memset(&c->multi, 0, sizeof(c->multi));
}

bool multi_control(const cmd_def *cmd)
{
    return cmd->fn == cmd_exec || cmd->fn == cmd_discard || cmd->fn == cmd_multi ||
           cmd->fn == cmd_watch || cmd->fn == cmd_quit;
}

void multi_flag(client_t *c)
{
    if (c->flags & CLIENT_MULTI) c->flags |= CLIENT_DIRTY_EXEC;
}

/* Leave MULTI: free the queue, forget the watches (Redis discardTransaction). */
static void discard(client_t *c)
{
    free_queue(c);
    c->flags &= ~(CLIENT_MULTI | CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC);
    watch_drop_client(c->node, c);
}

void multi_forget(client_t *c)
{
    watch_drop_client(c->node, c);
    if (!(c->flags & CLIENT_IN_EXEC)) discard(c); /* EXEC frees its queue itself */
}

void multi_queue(client_t *c, const cmd_def *cmd)
{
    multi_state *m = &c->multi;
    /* An aborted transaction need not keep anything (Redis does the same). */
    if (!(c->flags & (CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC))) {
        size_t data = 0;
        for (size_t i = 0; i < c->argc; i++) data += c->argv[i].len;
        size_t bytes = sizeof(multi_cmd) + c->argc * sizeof(resp_arg) + data;
        size_t limit = multi_limit(c->node);
        if (m->bytes + bytes > limit || bytes > limit) {
            free_queue(c);
            c->flags |= CLIENT_DIRTY_EXEC;
            reply_errorf(&c->out,
                         "ERR transaction discarded: its queued commands exceed %zu bytes "
                         "(half of proto-max-bulk-len, at most client-output-buffer-limit)",
                         limit);
            return;
        }
        if (m->count == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 8;
            m->cmds = cairn_realloc(m->cmds, m->cap * sizeof(*m->cmds));
        }
        /* One block: the argv array, then the argument bytes. */
        resp_arg *argv = cairn_malloc(c->argc * sizeof(resp_arg) + (data ? data : 1));
        char *p = (char *)(argv + c->argc);
        for (size_t i = 0; i < c->argc; i++) {
            if (c->argv[i].len) memcpy(p, c->argv[i].p, c->argv[i].len);
            argv[i] = (resp_arg){p, c->argv[i].len};
            p += c->argv[i].len;
        }
        m->cmds[m->count++] = (multi_cmd){cmd, c->argc, argv};
        m->bytes += bytes;
        m->flags |= cmd->flags;
    }
    reply_simple(&c->out, "QUEUED");
}

void cmd_multi(client_t *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(&c->out, "ERR MULTI calls can not be nested");
        return;
    }
    c->flags |= CLIENT_MULTI;
    reply_ok(&c->out);
}

void cmd_discard(client_t *c)
{
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(&c->out, "ERR DISCARD without MULTI");
        return;
    }
    discard(c);
    reply_ok(&c->out);
}

void multi_exec_abort(client_t *c, const char *err, size_t len)
{
    discard(c);
    if (len && err[0] == '-') err++, len--;
    /* Redis's generic errors reach here without their "ERR " (its
     * rejectCommandFormat), coded ones (OOM, NOAUTH, NOTPRIMARY) with it. */
    if (len >= 4 && memcmp(err, "ERR ", 4) == 0) err += 4, len -= 4;
    while (len && (err[len - 1] == '\n' || err[len - 1] == '\r')) len--;
    reply_errorf(&c->out, "EXECABORT Transaction discarded because of: %.*s", (int)len, err);
}

/* The gates client_exec applies to a single command, applied to EXEC with
 * the queued commands' flags.  False (and EXECABORT answered) when one
 * refuses. */
static bool exec_admit(client_t *c)
{
    node_t *n = c->node;
    unsigned flags = c->multi.flags;
    if (flags & (CMD_WRITE | CMD_READONLY)) {
        /* replica_admit writes its error into c->out: catch it aside. */
        cairn_buf out = c->out, err;
        buf_init(&c->out);
        bool ok = replica_admit(c, flags);
        err = c->out;
        c->out = out;
        if (!ok) multi_exec_abort(c, err.data, err.len);
        buf_close(&err);
        if (!ok) return false;
    }
    if ((flags & CMD_DENYOOM) && db_over_maxmemory(n)) {
        static const char oom[] = "OOM command not allowed when used memory > 'maxmemory'.";
        multi_exec_abort(c, oom, sizeof(oom) - 1);
        return false;
    }
    return true;
}

void cmd_exec(client_t *c)
{
    node_t *n = c->node;
    if (!(c->flags & CLIENT_MULTI)) {
        reply_error(&c->out, "ERR EXEC without MULTI");
        return;
    }
    if (!exec_admit(c)) return;
    /* Redis 7.0: a key that existed at WATCH and has expired since is a
     * change, even if nothing has deleted it yet. */
    if (!(c->flags & CLIENT_DIRTY_CAS) && watch_exec_expired(n, c)) c->flags |= CLIENT_DIRTY_CAS;
    if (c->flags & (CLIENT_DIRTY_CAS | CLIENT_DIRTY_EXEC)) {
        if (c->flags & CLIENT_DIRTY_EXEC)
            reply_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
        else
            reply_null_array(&c->out, c->proto);
        discard(c);
        return;
    }
    watch_drop_client(n, c); /* our own writes below must not matter */
    size_t argc = c->argc;
    resp_arg *argv = c->argv;
    c->flags |= CLIENT_IN_EXEC;
    reply_array(&c->out, c->multi.count);
    db_txn_begin(n);
    for (size_t i = 0; i < c->multi.count; i++) {
        const multi_cmd *q = &c->multi.cmds[i];
        c->argc = q->argc;
        c->argv = q->argv;
        c->last_cmd = q->cmd->name;
        n->stats.commands++;
        q->cmd->fn(c);
    }
    db_txn_end(n);
    c->flags &= ~CLIENT_IN_EXEC;
    c->argc = argc;
    c->argv = argv;
    c->last_cmd = "exec";
    discard(c);
}

void cmd_watch(client_t *c)
{
    if (c->flags & CLIENT_MULTI) {
        reply_error(&c->out, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    /* No point in watching more once a watched key has changed (Redis). */
    if (!(c->flags & CLIENT_DIRTY_CAS))
        for (size_t i = 1; i < c->argc; i++) watch_add(c->node, c, c->argv[i].p, c->argv[i].len);
    reply_ok(&c->out);
}

void cmd_unwatch(client_t *c)
{
    watch_drop_client(c->node, c);
    c->flags &= ~CLIENT_DIRTY_CAS;
    reply_ok(&c->out);
}
