/*
 * mgr_config.h — the manager's settings, through the same table-driven
 * parser as the node's (lib/config.h): every setting is a `--name value`
 * flag, and `--config FILE` reads the same names from a redis.conf-style
 * file first (flags win).
 */
#ifndef CAIRN_MGR_CONFIG_H
#define CAIRN_MGR_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

typedef struct mgr_config {
    char *etcd;           /* "etcd": comma-separated endpoints, default http://127.0.0.1:2379 */
    char *cluster;        /* "cluster": name, keys live under /cairn/<cluster>/; default "cairn" */
    int64_t port;         /* "port", default 7100 */
    char *bind;           /* "bind", default 127.0.0.1 (also the address others are told) */
    char *id;             /* "id": this manager's id; "" = from DIR/manager.id or random */
    int64_t lease_ttl;    /* "lease-ttl" seconds, default 2 */
    int64_t etcd_timeout; /* "etcd-timeout" ms bounding every etcd call, default 500 */
    int64_t switchover_timeout; /* "switchover-timeout" ms a primary may drain, default 2000 */
    char *dir;            /* "dir": keeps manager.id across restarts; "" = none */
    int loglevel;         /* debug verbose notice warning (enum log_level values) */
    char *logfile;        /* "" = stderr */
} mgr_config;

extern const cfg_def mgr_config_table[];

/* Defaults, then --config FILE, then the other flags of argv[first..argc);
 * then checks the cluster name and id.  Returns 0, or < 0 with a message
 * in err and `c` zeroed.  Release with mgr_config_free. */
int mgr_config_load(mgr_config *c, int argc, char **argv, int first, char *err, size_t errlen);
void mgr_config_free(mgr_config *c);

/* A cluster name or manager id: 1..64 of [A-Za-z0-9._-]. */
int mgr_config_name_ok(const char *s);

#endif
