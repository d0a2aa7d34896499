/*
 * cmd.h — the node's command table.
 *
 * One X-macro row per command: name, arity (Redis convention: N exact,
 * -N at least N), flags, first/last/step key positions (for COMMAND INFO and
 * the gateway's routing), group, and the argument hint that COMMAND DOCS
 * hands to redis-cli.  Handlers live in cmd_string.c, cmd_keys.c,
 * cmd_hash.c, cmd_server.c and cmd_multi.c.
 */
#ifndef CAIRN_CMD_H
#define CAIRN_CMD_H

#include "node/node.h"

#define CMD_WRITE (1u << 0)
#define CMD_READONLY (1u << 1)
#define CMD_DENYOOM (1u << 2)
#define CMD_ADMIN (1u << 3)
#define CMD_FAST (1u << 4)
#define CMD_NOAUTH (1u << 5)
#define CMD_LOADING (1u << 6)
#define CMD_STALE (1u << 7)
#define CMD_RANDOM (1u << 8)
#define CMD_NOMULTI (1u << 9) /* refused inside MULTI ("no_multi" in Redis 7.0) */

/* In the table, flags are abbreviated (expanded only in cmd.c): W write,
 * R readonly, M denyoom, A admin, F fast, N no-auth, L ok while loading. */
/*  name          handler          arity flags      first last step group  hint */
#define CMD_TABLE(X)                                                                              \
    X(append,      cmd_append,       3, W|M|F,     1, 1, 1, string, "key value")                  \
    X(auth,        cmd_auth,        -2, N|F|L,     0, 0, 0, connection, "[username] password")    \
    X(bgsave,      cmd_bgsave,      -1, A,         0, 0, 0, server, "[SCHEDULE]")                 \
    X(cairn,       cmd_cairn,       -2, F|L|CMD_NOMULTI, 0, 0, 0, server, "subcommand [arguments]") \
    X(client,      cmd_client,      -2, A|L,       0, 0, 0, connection, "subcommand [arguments]") \
    X(command,     cmd_command,     -1, L,         0, 0, 0, server, "[subcommand [arguments]]")   \
    X(config,      cmd_config,      -2, A|L,       0, 0, 0, server, "subcommand [arguments]")     \
    X(dbsize,      cmd_dbsize,       1, R|F,       0, 0, 0, server, "")                           \
    X(decr,        cmd_decr,         2, W|M|F,     1, 1, 1, string, "key")                        \
    X(decrby,      cmd_decrby,       3, W|M|F,     1, 1, 1, string, "key decrement")              \
    X(del,         cmd_del,         -2, W,         1,-1, 1, generic, "key [key ...]")             \
    X(discard,     cmd_discard,      1, F|L,       0, 0, 0, transactions, "")                     \
    X(echo,        cmd_echo,         2, F,         0, 0, 0, connection, "message")                \
    X(exec,        cmd_exec,         1, L,         0, 0, 0, transactions, "")                     \
    X(exists,      cmd_exists,      -2, R|F,       1,-1, 1, generic, "key [key ...]")             \
    X(expire,      cmd_expire,      -3, W|F,       1, 1, 1, generic, "key seconds [NX|XX|GT|LT]") \
    X(expireat,    cmd_expireat,    -3, W|F,       1, 1, 1, generic, "key unix-time-seconds [NX|XX|GT|LT]") \
    X(expiretime,  cmd_expiretime,   2, R|F,       1, 1, 1, generic, "key")                       \
    X(flushall,    cmd_flushall,    -1, W,         0, 0, 0, server, "[ASYNC|SYNC]")               \
    X(flushdb,     cmd_flushall,    -1, W,         0, 0, 0, server, "[ASYNC|SYNC]")               \
    X(get,         cmd_get,          2, R|F,       1, 1, 1, string, "key")                        \
    X(getdel,      cmd_getdel,       2, W|F,       1, 1, 1, string, "key")                        \
    X(getex,       cmd_getex,       -2, W|F,       1, 1, 1, string, "key [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|PERSIST]") \
    X(getrange,    cmd_getrange,     4, R,         1, 1, 1, string, "key start end")              \
    X(getset,      cmd_getset,       3, W|M|F,     1, 1, 1, string, "key value")                  \
    X(hdel,        cmd_hdel,        -3, W|F,       1, 1, 1, hash, "key field [field ...]")        \
    X(hello,       cmd_hello,       -1, N|F|L,     0, 0, 0, connection, "[protover [AUTH username password] [SETNAME clientname]]") \
    X(hexists,     cmd_hexists,      3, R|F,       1, 1, 1, hash, "key field")                    \
    X(hget,        cmd_hget,         3, R|F,       1, 1, 1, hash, "key field")                    \
    X(hgetall,     cmd_hgetall,      2, R,         1, 1, 1, hash, "key")                          \
    X(hincrby,     cmd_hincrby,      4, W|M|F,     1, 1, 1, hash, "key field increment")          \
    X(hincrbyfloat,cmd_hincrbyfloat, 4, W|M|F,     1, 1, 1, hash, "key field increment")          \
    X(hkeys,       cmd_hkeys,        2, R,         1, 1, 1, hash, "key")                          \
    X(hlen,        cmd_hlen,         2, R|F,       1, 1, 1, hash, "key")                          \
    X(hmget,       cmd_hmget,       -3, R|F,       1, 1, 1, hash, "key field [field ...]")        \
    X(hmset,       cmd_hset,        -4, W|M|F,     1, 1, 1, hash, "key field value [field value ...]") \
    X(hscan,       cmd_hscan,       -3, R,         1, 1, 1, hash, "key cursor [MATCH pattern] [COUNT count]") \
    X(hset,        cmd_hset,        -4, W|M|F,     1, 1, 1, hash, "key field value [field value ...]") \
    X(hsetnx,      cmd_hsetnx,       4, W|M|F,     1, 1, 1, hash, "key field value")              \
    X(hstrlen,     cmd_hstrlen,      3, R|F,       1, 1, 1, hash, "key field")                    \
    X(hvals,       cmd_hvals,        2, R,         1, 1, 1, hash, "key")                          \
    X(incr,        cmd_incr,         2, W|M|F,     1, 1, 1, string, "key")                        \
    X(incrby,      cmd_incrby,       3, W|M|F,     1, 1, 1, string, "key increment")              \
    X(incrbyfloat, cmd_incrbyfloat,  3, W|M|F,     1, 1, 1, string, "key increment")              \
    X(info,        cmd_info,        -1, L,         0, 0, 0, server, "[section [section ...]]")    \
    X(keys,        cmd_keys,         2, R,         0, 0, 0, generic, "pattern")                   \
    X(lastsave,    cmd_lastsave,     1, L|F,       0, 0, 0, server, "")                           \
    X(mget,        cmd_mget,        -2, R|F,       1,-1, 1, string, "key [key ...]")              \
    X(mset,        cmd_mset,        -3, W|M,       1,-1, 2, string, "key value [key value ...]")  \
    X(msetnx,      cmd_msetnx,      -3, W|M,       1,-1, 2, string, "key value [key value ...]")  \
    X(multi,       cmd_multi,        1, F|L,       0, 0, 0, transactions, "")                     \
    X(persist,     cmd_persist,      2, W|F,       1, 1, 1, generic, "key")                       \
    X(pexpire,     cmd_pexpire,     -3, W|F,       1, 1, 1, generic, "key milliseconds [NX|XX|GT|LT]") \
    X(pexpireat,   cmd_pexpireat,   -3, W|F,       1, 1, 1, generic, "key unix-time-milliseconds [NX|XX|GT|LT]") \
    X(pexpiretime, cmd_pexpiretime,  2, R|F,       1, 1, 1, generic, "key")                       \
    X(ping,        cmd_ping,        -1, F|L,       0, 0, 0, connection, "[message]")              \
    X(psetex,      cmd_psetex,       4, W|M,       1, 1, 1, string, "key milliseconds value")     \
    X(pttl,        cmd_pttl,         2, R|F,       1, 1, 1, generic, "key")                       \
    X(quit,        cmd_quit,        -1, N|F|L,     0, 0, 0, connection, "")                       \
    X(randomkey,   cmd_randomkey,    1, R|CMD_RANDOM, 0, 0, 0, generic, "")                       \
    X(rename,      cmd_rename,       3, W,         1, 2, 1, generic, "key newkey")                \
    X(renamenx,    cmd_renamenx,     3, W|F,       1, 2, 1, generic, "key newkey")                \
    X(save,        cmd_save,         1, A|CMD_NOMULTI, 0, 0, 0, server, "")                       \
    X(scan,        cmd_scan,        -2, R,         0, 0, 0, generic, "cursor [MATCH pattern] [COUNT count] [TYPE type]") \
    X(select,      cmd_select,       2, F|L,       0, 0, 0, connection, "index")                  \
    X(set,         cmd_set,         -3, W|M,       1, 1, 1, string, "key value [NX|XX] [GET] [EX seconds|PX milliseconds|EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]") \
    X(setex,       cmd_setex,        4, W|M,       1, 1, 1, string, "key seconds value")          \
    X(setnx,       cmd_setnx,        3, W|M|F,     1, 1, 1, string, "key value")                  \
    X(setrange,    cmd_setrange,     4, W|M,       1, 1, 1, string, "key offset value")           \
    X(shutdown,    cmd_shutdown,    -1, A|L|CMD_NOMULTI, 0, 0, 0, server, "[NOSAVE|SAVE] [NOW] [FORCE] [ABORT]") \
    X(strlen,      cmd_strlen,       2, R|F,       1, 1, 1, string, "key")                        \
    X(substr,      cmd_getrange,     4, R,         1, 1, 1, string, "key start end")              \
    X(time,        cmd_time,         1, F|L,       0, 0, 0, server, "")                           \
    X(ttl,         cmd_ttl,          2, R|F,       1, 1, 1, generic, "key")                       \
    X(type,        cmd_type,         2, R|F,       1, 1, 1, generic, "key")                       \
    X(unlink,      cmd_del,         -2, W|F,       1,-1, 1, generic, "key [key ...]")             \
    X(unwatch,     cmd_unwatch,      1, F|L,       0, 0, 0, transactions, "")                     \
    X(watch,       cmd_watch,       -2, F|L,       1,-1, 1, transactions, "key [key ...]")

typedef void cmd_fn(client_t *c);

typedef struct cmd_def {
    const char *name;
    cmd_fn *fn;
    int arity;
    unsigned flags;
    int first, last, step;
    const char *group;
    const char *hint;
} cmd_def;

#define CMD_DECLARE(name, fn, ...) cmd_fn fn;
CMD_TABLE(CMD_DECLARE)
#undef CMD_DECLARE

/* ---- cmd_multi.c ---- */
/* Commands that run at once even inside MULTI (never queued). */
bool multi_control(const cmd_def *cmd);
/* Queue the current request of a client in MULTI (already admitted) and
 * reply +QUEUED (or an error past the queue's memory limit). */
void multi_queue(client_t *c, const cmd_def *cmd);
/* A command was refused while c is in MULTI: its EXEC will abort. */
void multi_flag(client_t *c);
/* EXEC itself was refused with `err` (a RESP error line, or its text):
 * discard the transaction, reply "-EXECABORT Transaction discarded because
 * of: <text>". */
void multi_exec_abort(client_t *c, const char *err, size_t len);

/* Look a command up by name, case-insensitively; NULL when unknown. */
const cmd_def *cmd_lookup(const char *name, size_t len);
/* The whole table, sorted by name, and its length. */
const cmd_def *cmd_table(size_t *n);

/* ---- shared helpers for handlers ---- */
/* The exact texts Redis 7 sends. */
#define ERR_WRONGTYPE "WRONGTYPE Operation against a key holding the wrong kind of value"
#define ERR_NOTINT "ERR value is not an integer or out of range"
#define ERR_NOTFLOAT "ERR value is not a valid float"
#define ERR_SYNTAX "ERR syntax error"
#define ERR_OVERFLOW "ERR increment or decrement would overflow"
#define ERR_NOKEY "ERR no such key"

/* Parse argv[i] as an integer; on failure reply `err` (ERR_NOTINT when NULL)
 * and return false. */
bool arg_i64(client_t *c, const resp_arg *a, int64_t *out, const char *err);
bool arg_eq(const resp_arg *a, const char *lit);
/* "ERR wrong number of arguments for 'NAME' command" */
void reply_arity(client_t *c, const char *name);
/* "ERR unknown subcommand 'x'. Try CONTAINER HELP." (argv[1] is x) */
void reply_unknown_sub(client_t *c, const char *container);

#endif
