/*
 * node.h — the data node's context and the client connection.
 *
 * One `struct node` per process, passed explicitly (never a global reached
 * from everywhere).  Request flow through the files of src/node/:
 *
 *   client.c   read_cb -> resp_parse_request -> client_exec
 *   cmd.c      client_exec: lookup, arity, auth, OOM checks -> handler
 *   cmd_*.c    handler: db_* lookups, keyspace change, db_log() of the
 *              deterministic form of the write, reply_* into c->out
 *   db.c       lazy expiry, the write log hook (LSN, watched keys), active
 *              expiry
 *   cmd_multi.c MULTI/EXEC/DISCARD/WATCH/UNWATCH; watch.c the watched keys
 *   persist.c  before-sleep: WAL write (+ fsync), commit index advances
 *   client.c   held replies released up to the commit index (invariant 3),
 *              written with uv_try_write / uv_write
 */
#ifndef CAIRN_NODE_H
#define CAIRN_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "lib/buf.h"
#include "lib/keyspace.h"
#include "lib/resp.h"
#include "node/node_config.h"

typedef struct node node_t;
typedef struct client client_t;
typedef struct persist persist_t;
typedef struct replica replica_t;
typedef struct watch_map watch_map;
struct cmd_def;
struct watch_key;

/* Client flags. */
#define CLIENT_CLOSE_AFTER_REPLY (1u << 0) /* QUIT, protocol error */
#define CLIENT_CLOSING (1u << 1)           /* uv_close issued */
#define CLIENT_READ_PAUSED (1u << 2)       /* output backlog: stop reading */
#define CLIENT_BLOCKED (1u << 3)           /* waiting (SAVE): do not execute more */
#define CLIENT_PENDING (1u << 4)           /* on the node's pending-write list */
#define CLIENT_REPLAY (1u << 5)            /* the WAL replay pseudo-client */
#define CLIENT_AUTHED (1u << 6)
#define CLIENT_NOHOLD (1u << 7)            /* a replication peer: replies never held */
#define CLIENT_READONLY (1u << 8)          /* CAIRN READONLY: reads allowed on a secondary */
#define CLIENT_MULTI (1u << 9)             /* between MULTI and EXEC/DISCARD: queueing */
#define CLIENT_DIRTY_CAS (1u << 10)        /* a watched key changed: EXEC answers null */
#define CLIENT_DIRTY_EXEC (1u << 11)       /* a command was refused while queueing: EXECABORT */
#define CLIENT_IN_EXEC (1u << 12)          /* running its queued commands */

/* A command queued by MULTI: argv and the bytes it points to are one
 * allocation owned by the queue (the request itself pointed into a read
 * buffer that is reused). */
typedef struct multi_cmd {
    const struct cmd_def *cmd;
    size_t argc;
    resp_arg *argv;
} multi_cmd;

/* One client's transaction state (cmd_multi.c). */
typedef struct multi_state {
    multi_cmd *cmds;
    size_t count, cap;
    size_t bytes;   /* memory the queue holds, counted against the limit */
    unsigned flags; /* union of the queued commands' CMD_* flags */
} multi_state;

/* A span of reply bytes that may not leave before `lsn` is committed. */
typedef struct hold_mark {
    size_t end; /* offset in out (absolute since the client began) */
    uint64_t lsn;
} hold_mark;

struct client {
    uv_tcp_t tcp;
    node_t *node;
    uint64_t id;
    unsigned flags;
    int proto;            /* 2 or 3 */
    char *name;           /* CLIENT SETNAME; NULL when unset */
    char *lib_name, *lib_ver;
    char addr[64], laddr[64];
    int fd;
    int64_t ctime_ms, last_ms; /* created, last command */
    const char *last_cmd;

    resp_parser parser;
    cairn_buf query;   /* partial request bytes (unread tail) */
    size_t argc;
    resp_arg *argv;    /* current request, points into the read buffer */

    cairn_buf out;      /* replies not yet handed to the kernel */
    uint64_t out_base;  /* absolute offset of out.data[0] */
    uint64_t out_ok;    /* absolute offset up to which replies are committed */
    hold_mark *marks;   /* pending holds, in order */
    size_t nmarks, capmarks;
    size_t inflight;    /* bytes in a uv_write not yet completed */

    multi_state multi;          /* queued commands while CLIENT_MULTI */
    struct watch_key **watched; /* keys this client WATCHes (watch.c) */
    size_t nwatched, capwatched;

    client_t *prev, *next;           /* node->clients */
    client_t *pend_prev, *pend_next; /* node->pending (output to flush) */
};

typedef struct node_stats {
    uint64_t connections, commands, rejected_conns, expired_keys, keyspace_hits,
        keyspace_misses, net_in, net_out, proto_errors, evicted_clients;
} node_stats;

struct node {
    uv_loop_t *loop;
    node_config cfg;
    ks_t *ks;
    uv_tcp_t listener;
    uv_prepare_t before_sleep;
    uv_timer_t cron;
    uv_signal_t sigterm, sigint, sigchld;
    char *readbuf; /* shared read buffer for clients with no partial request */
    size_t readbuf_size;

    client_t *clients, *pending;
    size_t nclients;
    uint64_t next_client_id;
    client_t *replay; /* pseudo-client executing WAL records at start-up */

    uint64_t last_lsn;     /* LSN of the latest write applied to the keyspace */
    uint64_t last_version; /* configuration version of the entry at last_lsn */
    uint64_t durable_lsn;  /* the local log holds everything up to here (policy) */
    uint64_t commit_lsn;   /* committed: durable here and, when replicated, on
                              every replica of the configuration (invariant 2) */
    uint32_t cfg_version;  /* stamped on the entries this node creates */
    bool loading;          /* replaying/applying: no expiry, writes not re-logged */
    /* EXEC in progress: db_log() appends each write to one record, which
     * db_txn_end() gives a single LSN (a transaction is atomic in the log
     * and on the secondaries). */
    bool txn_open;
    size_t txn_writes;
    cairn_buf *txn_payload;
    watch_map *watch;      /* watched keys -> clients; NULL until a WATCH */
    size_t watched_keys;   /* keys in it: 0 makes the write hook free */
    replica_t *replica;    /* NULL for a standalone node */

    persist_t *persist;
    node_stats stats;
    int64_t start_ms;
    bool shutting_down;
    int exit_code;
    char run_id[41];
};

/* ---- client.c ---- */
int client_listen(node_t *n);
/* Close a client: its pending output is dropped. */
void client_close(client_t *c);
/* Record that the reply bytes appended so far need `node->last_lsn` to be
 * committed before they are sent (call after each command). */
void client_mark(client_t *c);
/* The node's commit index advanced: release held replies and write out
 * everything that may go.  Called from before-sleep and the sync callback. */
void client_flush_all(node_t *n);
/* Resume a client that was BLOCKED (e.g. a SAVE finished). */
void client_unblock(client_t *c);
/* Make sure c is on the pending-write list. */
void client_want_write(client_t *c);
size_t client_out_pending(const client_t *c);
void client_info_line(client_t *c, cairn_buf *out);

/* ---- cmd.c ---- */
void client_exec(client_t *c);

/* ---- cmd_multi.c ---- */
/* The client is closing: drop its watches, and its queue unless its EXEC
 * is running (EXEC frees it then).  Idempotent. */
void multi_forget(client_t *c);

/* ---- node.c ---- */
/* The local log became durable up to lsn: advance commit (or tell the
 * replication layer, which decides commit). */
void node_durable(node_t *n, uint64_t lsn);
/* A background snapshot finished (ok or not) at lsn. */
void node_snapshot_done(node_t *n, bool ok, uint64_t lsn);
/* May this node change its keyspace on its own (expire keys)?  True for a
 * standalone node and for a primary that holds its leases. */
bool node_writable(node_t *n);
/* A fast pseudo-random 64-bit number (xorshift; not for secrets). */
uint64_t node_rand64(void);
int node_main(int argc, char **argv);
/* Stop the loop after flushing; `save` asks for a snapshot first. */
int node_shutdown(node_t *n, bool save, bool nosave);

#endif
