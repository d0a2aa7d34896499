/*
 * replica.h — a node's membership in a replica group: it connects the pure
 * replication state machine (lib/repl) to the manager, to the peers, to the
 * log and to the clients.  Absent (n->replica == NULL) on a standalone node.
 */
#ifndef CAIRN_REPLICA_H
#define CAIRN_REPLICA_H

#include "node/node.h"

/* Start heartbeating the managers of cfg.manager.  0 or <0. */
int replica_start(node_t *n);
void replica_stop(node_t *n);

/* The primary logged a new entry (payload = the logged command). */
void replica_local_append(node_t *n, uint64_t lsn, const char *payload, size_t len);
/* Before the loop sleeps (and before the log is written): stream the
 * entries logged during this turn. */
void replica_before_sleep(node_t *n);
/* After the log write of before-sleep: send the APPENDs and ACKs queued
 * during this turn now, not after the next poll. */
void replica_flush_links(node_t *n);
/* client.c, after a read that left a request incomplete: if c is the
 * connection our primary streams to us on, a large message is arriving
 * (progress for the grace timer; repl.h "Large entries"). */
void replica_stream_progress(client_t *c);
/* The local log is durable up to lsn. */
void replica_durable(node_t *n, uint64_t lsn);
void replica_snapshot_done(node_t *n, bool ok, uint64_t lsn);

/* Primary holding its leases. */
bool replica_serving(node_t *n);
/* May this client's command (with these CMD_* flags) run here now?  When
 * not, the error reply (naming the primary and the version) is written. */
bool replica_admit(client_t *c, unsigned cmd_flags);

/* CAIRN <subcommand> ...: messages from peers and a status probe. */
void replica_cmd(client_t *c);
/* INFO replication section. */
void replica_info(node_t *n, cairn_buf *b);

#endif
