/*
 * persist.h — the node's durability: write-ahead log and snapshots.
 *
 * Records are appended to an in-memory batch by the command path
 * (persist_record_begin/end).  Before the loop sleeps, persist_before_sleep()
 * writes the batch to the current segment in one write() (group commit):
 *
 *   fsync no        commit = written (the OS flushes when it likes)
 *   fsync everysec  commit = written; a pool thread fdatasyncs once a second
 *   fsync always    a pool thread fdatasyncs; commit = synced, when it is done
 *
 * Held replies (client.c) go out once commit_lsn reaches their mark.
 *
 * Snapshots are taken by a forked child (copy-on-write, so the loop stalls
 * only for fork()): at fork the log rotates to a new segment starting at
 * last_lsn + 1; when the child has written and synced the snapshot, the
 * segments it covers are deleted.  Recovery loads the snapshot and replays
 * the segments after it.
 */
#ifndef CAIRN_PERSIST_H
#define CAIRN_PERSIST_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/buf.h"
#include "node/node.h"

/* Open the data dir, recover the keyspace into n->ks (snapshot + log
 * replay), and start a fresh segment.  Returns 0 or <0 after logging a
 * message that names the file and offset at fault. */
int persist_open(node_t *n);
/* Flush, sync and close the log; if `snapshot`, write one first. */
int persist_close(node_t *n, bool snapshot);

/* Append a record: write the payload into the returned buffer, then call
 * _end with its LSN. */
cairn_buf *persist_record_begin(persist_t *p);
void persist_record_end(persist_t *p, uint64_t lsn, uint32_t version);
/* Replica: log an entry received from the primary as it is. */
void persist_append_raw(persist_t *p, uint64_t lsn, uint32_t version, const void *payload, size_t len);
/* Version of the log entry at lsn, or -1 when not known (before the
 * snapshot, or beyond the log). */
int64_t persist_entry_version(node_t *n, uint64_t lsn);
/* Replica: a received snapshot at (lsn, version) has been renamed to the
 * snapshot path and loaded: drop the log, start a segment at lsn + 1. */
int persist_reset(node_t *n, uint64_t lsn, uint32_t version);
const char *persist_snapshot_path(node_t *n);

void persist_before_sleep(node_t *n);
/* Called from the node's timer (hz): everysec syncs, size-triggered
 * snapshots, reaping. */
void persist_cron(node_t *n);

/* Start a background snapshot.  `waiter`, if not NULL, is unblocked with
 * +OK (or an error) when it completes (SAVE).  Returns 0, or
 * -EALREADY when one is running. */
int persist_bgsave(node_t *n, client_t *waiter);
/* A child exited (SIGCHLD). */
void persist_child_exited(node_t *n);
/* A client is going away: forget it as a waiter. */
void persist_forget_client(node_t *n, client_t *c);

/* Free the persistence state (after persist_close). */
void persist_destroy(node_t *n);

/* INFO persistence section. */
void persist_info(node_t *n, cairn_buf *out);
int64_t persist_lastsave(node_t *n);
bool persist_bgsave_running(node_t *n);
/* BGSAVE SCHEDULE: run another snapshot when the current one ends. */
void persist_schedule_bgsave(node_t *n);

#endif
