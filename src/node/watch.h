/*
 * watch.h — WATCH: which clients watch which keys, and who must hear that a
 * key changed.
 *
 * A node-wide map from key to the clients watching it (Redis's
 * db->watched_keys), and on each client the list of its entries (its
 * c->watched), so UNWATCH and a closing connection cost the client's own
 * keys only.
 *
 * Where a change is noticed.  Every change a command makes to the keyspace
 * is logged through db_log() (db.h), on a primary and a standalone node
 * alike, and on a secondary or during replay the applied record runs the
 * same handlers, which call db_log() too.  So db_log() is the one place
 * that calls watch_touch_logged(), before anything else, and only when
 * n->watched_keys is non-zero: with nobody watching a write pays one load
 * and one branch.  The keys of the logged command come from the command
 * table's key positions; FLUSHALL is logged before the keyspace is emptied
 * so that, as in Redis, only watched keys that existed count as changed.
 *
 * Expiry (Redis 7.0's rules, multi.c):
 *   - a key that existed when WATCH ran and has expired since makes EXEC
 *     fail, whether or not the expired key has been deleted yet
 *     (watch_exec_check looks at keys still stored but past their time);
 *   - a key that had already expired (but was still stored) when WATCH ran
 *     is "absent" to the watcher: its deletion by expiry, or by FLUSHALL,
 *     is no change (the flag is cleared); any other write to it is one.
 */
#ifndef CAIRN_WATCH_H
#define CAIRN_WATCH_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/resp.h"
#include "node/node.h"

/* Watch `key` for c (no effect if c already watches it). */
void watch_add(node_t *n, client_t *c, const char *key, size_t klen);
/* Forget every key c watches (UNWATCH, EXEC, DISCARD, close). */
void watch_drop_client(node_t *n, client_t *c);
/* A command was logged: mark the watchers of the keys it names dirty.
 * Call before the keyspace change is visible only for FLUSHALL (see above);
 * any order for the rest.  Precondition: n->watched_keys > 0. */
void watch_touch_logged(node_t *n, size_t argc, const resp_arg *argv);
/* The keyspace was replaced wholesale (a replica loaded a snapshot): every
 * watcher is dirty. */
void watch_touch_all(node_t *n);
/* At EXEC: has a key c watched while it existed expired since?  (It is
 * then "modified", even if nothing deleted it yet.) */
bool watch_exec_expired(node_t *n, client_t *c);
/* Free the map (at shutdown, after every client is gone). */
void watch_destroy(node_t *n);

#endif
