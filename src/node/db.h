/*
 * db.h — what command handlers use to reach the keyspace.
 *
 * Lookups apply lazy expiry: a key whose expiry has passed is deleted (and
 * the deletion logged as DEL, so the log replays to the same state) and
 * reported absent.  While the node replays its log (`loading`), nothing
 * expires by itself: deletions come only from the logged DELs, so replay is
 * deterministic whatever the clock says.
 *
 * Every state change a handler makes is logged with db_log*() in a
 * deterministic form (absolute expiry times, results instead of relative
 * operations where needed).  Each logged record takes the next LSN, except
 * inside EXEC (db_txn_begin .. db_txn_end), where the writes of the whole
 * transaction become one record with one LSN.
 *
 * Record payload (the WAL record's bytes, also what replication streams):
 * one RESP multibulk command, or — a transaction — several of them
 * back to back, applied in order as one unit (db_apply_record).  A log
 * written before transactions existed holds only the first kind, so it
 * still loads.  The WAL checksums the record as a whole, so a torn or
 * damaged transaction is dropped or refused whole, never half applied.
 */
#ifndef CAIRN_DB_H
#define CAIRN_DB_H

#include "node/node.h"

/* Lookups; NULL when absent or expired.  _read counts hits/misses. */
ks_ent_t *db_lookup_read(client_t *c, const resp_arg *key);
ks_ent_t *db_lookup_write(client_t *c, const resp_arg *key);
/* True when e's expiry has passed (never while loading). */
bool db_expired(node_t *n, ks_ent_t *e, int64_t now);

/* Log a write: argv[0..argc).  Returns the record's LSN. */
uint64_t db_log(node_t *n, size_t argc, const resp_arg *argv);
/* Log the current request unchanged. */
uint64_t db_log_argv(client_t *c);
/* Log a command built from C strings / counted strings: fmt letters
 * 's' (const char*), 'b' (const char*, size_t), 'a' (const resp_arg*),
 * 'i' (int64_t).  E.g. db_logf(n, "sai", "PEXPIREAT", key, at). */
uint64_t db_logf(node_t *n, const char *fmt, ...);

/* EXEC: from _begin to _end, db_log() appends each write to one record.
 * _end gives it the next LSN (and hands it to the log and the replication
 * stream) if the transaction wrote anything; no record otherwise. */
void db_txn_begin(node_t *n);
void db_txn_end(node_t *n);

/* Apply one log record's payload with the replay client (start-up replay,
 * a secondary applying its primary's entries).  Every command is parsed
 * before any runs: 0 when all ran, CAIRN_ECORRUPT when the payload is not a
 * sequence of complete commands (then nothing ran).  `p` is scratch. */
int db_apply_record(node_t *n, resp_parser *p, uint64_t lsn, const char *payload, size_t len);

/* Delete e and log DEL key. */
void db_delete_logged(node_t *n, ks_ent_t *e);

/* One active-expiry cycle: sample keys with a TTL and delete the expired
 * ones, for at most `budget_us`.  Returns keys expired. */
size_t db_active_expire(node_t *n, int64_t budget_us);

/* Check used memory against maxmemory: true when a write must be refused. */
bool db_over_maxmemory(node_t *n);

#endif
