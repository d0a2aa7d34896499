/*
 * node_config.h — the node's settings: the struct, its table, and start-up
 * loading (defaults, then --config FILE, then --flags; later wins).
 *
 * Runtime changes go through the generic module with the same table:
 *     cfg_set(node_config_table, c, name, value, true, err, errlen)
 * which refuses the immutable settings (bind, port, dir).
 */
#ifndef CAIRN_NODE_CONFIG_H
#define CAIRN_NODE_CONFIG_H

#include <stdint.h>

#include "lib/config.h"

enum fsync_policy { FSYNC_ALWAYS, FSYNC_EVERYSEC, FSYNC_NO };
enum maxmemory_policy { MAXMEMORY_NOEVICTION };
/* `loglevel` holds one of these; the values equal enum log_level's
 * LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARN, so it can be passed to
 * log_set_level() as is. */
enum node_loglevel { LOGLEVEL_DEBUG, LOGLEVEL_VERBOSE, LOGLEVEL_NOTICE, LOGLEVEL_WARNING };

typedef struct node_config {
    char *bind;                         /* "bind", default "127.0.0.1"; immutable */
    int64_t port;                       /* "port", default 7001, 1..65535; immutable */
    char *dir;                          /* "dir", default "./cairn-data"; immutable */
    int fsync;                          /* "fsync" / "appendfsync": enum fsync_policy, default everysec */
    char *requirepass;                  /* default "" = no password */
    int64_t maxmemory;                  /* bytes, default 0 = unlimited */
    int maxmemory_policy;               /* enum maxmemory_policy: only "noeviction" */
    int64_t maxclients;                 /* default 10000, min 1 */
    int64_t timeout;                    /* idle client timeout in seconds, default 0 = never */
    int64_t proto_max_bulk_len;         /* bytes, default 512mb, min 1mb */
    int64_t proto_max_multibulk_len;    /* default 1048576, min 1 */
    int64_t proto_inline_max_size;      /* bytes, default 64kb, min 1kb */
    int64_t client_output_buffer_limit; /* bytes, default 256mb, 0 = unlimited */
    int64_t wal_snapshot_size;          /* snapshot when the log exceeds this, default 64mb, min 1mb */
    int64_t hz;                         /* default 10, 1..500 */
    int loglevel;                       /* enum node_loglevel, default notice */
    char *logfile;                      /* default "" = stderr */
    char *manager;                      /* host:port[,host:port...]; "" = standalone */
    char *advertise;                    /* host:port peers use; "" = bind:port */
    char *zone;                         /* failure zone for placement; "" = none */
    int64_t weight;                     /* relative capacity for scheduling, default 1 */
    int64_t repl_lease_ms;              /* primary's lease period (invariant 4) */
    int64_t repl_grace_ms;              /* secondary's grace period, > lease */
    int64_t repl_backlog_size;          /* bytes of recent entries kept for catch-up */
    char *config_file;                  /* the --config path, or NULL; not a setting */
} node_config;

/* The settings table (ends with a {.name = NULL} entry). */
extern const cfg_def node_config_table[];

/* Fill `c` (its old contents are ignored, not freed) from argv[first..argc):
 * defaults, then the file named by `--config FILE` (or `--config=FILE`), then
 * every other `--name value` flag, so flags override the file.  Returns 0,
 * or <0 with a message in err (see cfg_load_file / cfg_load_args) and `c`
 * left zeroed with nothing to free.  On success release with
 * node_config_free(). */
int node_config_load(node_config *c, int argc, char **argv, int first, char *err, size_t errlen);

/* Free the strings of `c` and zero it.  Safe on a zeroed struct and twice. */
void node_config_free(node_config *c);

#endif
