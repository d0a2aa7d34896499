/*
 * gw_config.h — the gateway's settings (flags or a `name value` file), and
 * the checks that read the secret among them (requirepass).
 */
#ifndef CAIRN_GW_CONFIG_H
#define CAIRN_GW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/config.h"

typedef struct gw_config {
    char *bind;              /* default 127.0.0.1 */
    int64_t port;            /* default 6380 */
    char *manager;           /* host:port[,host:port]; required */
    int read_policy;         /* primary | replica | prefer-replica | any */
    bool read_your_writes;   /* replica reads see the client's own writes; default yes */
    int policy;              /* index into policy_at(): the scheduling policy */
    int64_t backend_conns;   /* connections per node, default 2 */
    int64_t timeout_ms;      /* backend reply timeout, default 5000 */
    int64_t retry_ms;        /* retry budget for refused requests, default 3000 */
    int64_t maxclients;      /* default 10000 */
    int64_t slow_start_ms;   /* traffic ramp for a re-admitted node, default 5000 */
    char *requirepass;       /* the default user's password; "" (default) = no AUTH needed */
    int loglevel;
    char *logfile;
    char *config_file;
} gw_config;

extern const cfg_def gw_config_table[];
int gw_config_load(gw_config *c, int argc, char **argv, int first, char *err, size_t errlen);
void gw_config_free(gw_config *c);

/* True when clients must AUTH before anything else (requirepass is set). */
bool gw_config_auth_required(const gw_config *c);

/* True when `pass` (len bytes, not NUL-terminated) is requirepass.  The time
 * taken depends only on requirepass's length: not on the guess, nor on where
 * it first differs.  Precondition: gw_config_auth_required(c). */
bool gw_config_password_ok(const gw_config *c, const char *pass, size_t len);

/* True when `bind` is reachable from other hosts (not 127.0.0.0/8) while no
 * password is set: worth a warning at start. */
bool gw_config_exposed(const gw_config *c);

#endif
