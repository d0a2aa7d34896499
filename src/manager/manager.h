/*
 * manager.h — `cairn manager`: cluster management (DESIGN.md, "Cluster
 * management and failover").  See mgr.h for the request flow and etcd
 * layout, mgr_cmd.c for the RESP protocol.
 */
#ifndef CAIRN_MANAGER_H
#define CAIRN_MANAGER_H

/* argv[1] is "manager".  Returns the process exit code. */
int manager_main(int argc, char **argv);

#endif
