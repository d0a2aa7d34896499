/*
 * ctl.h — `cairn ctl`: the operator's command line.
 *
 *   cairn ctl [--manager HOST:PORT[,HOST:PORT..]] COMMAND
 *     status [--json]             active manager, shards (members, LSNs, lag), nodes,
 *                                 gateways (per node: requests, errors, outstanding,
 *                                 p50/p99/p999 latency, ejected / slow start)
 *     topology                    raw TOPOLOGY JSON (what gateways see)
 *     shard create --replicas N   new shard on N spare nodes
 *     switchover SHARD [NODE]     move the primary role (NODE: id or host:port) once
 *                                 the primary has drained; prints the pause
 *     node weight NODE W          set a node's weight
 *
 * Talks RESP to the managers through net/rconn, trying each address until
 * one is active (a standby's -NOTACTIVE names the active one, which is
 * tried next).  Exit status 0 on success, 1 with a message on stderr.
 */
#ifndef CAIRN_CTL_H
#define CAIRN_CTL_H

/* argv[1] is "ctl".  Returns the exit status. */
int ctl_main(int argc, char **argv);

#endif
