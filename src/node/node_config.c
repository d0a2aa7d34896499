/*
 * node_config.c — the node's settings table and start-up loading.
 *
 * Adding a setting: a field in node_config (node_config.h), a row here.
 * The generic parser (lib/config.c) does the rest: file, flags, CONFIG GET
 * and CONFIG SET all see it.
 */
#include "node/node_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/util.h"
#include "net/rconn.h"

_Static_assert(LOGLEVEL_DEBUG == (int)LOG_DEBUG && LOGLEVEL_VERBOSE == (int)LOG_INFO &&
                   LOGLEVEL_NOTICE == (int)LOG_NOTICE && LOGLEVEL_WARNING == (int)LOG_WARN,
               "loglevel enum must line up with enum log_level");

static const char *const fsync_names[] = {"always", "everysec", "no", NULL};
static const char *const maxmemory_policy_names[] = {"noeviction", NULL};
static const char *const loglevel_names[] = {"debug", "verbose", "notice", "warning", NULL};

#define OFF(f) offsetof(node_config, f)
#define MB (1024 * 1024)

const cfg_def node_config_table[] = {
    {.name = "bind", .type = CFG_STRING, .offset = OFF(bind), .def = "127.0.0.1",
     .flags = CFG_IMMUTABLE},
    {.name = "port", .type = CFG_INT, .offset = OFF(port), .def = "7001", .min = 1, .max = 65535,
     .flags = CFG_IMMUTABLE},
    {.name = "dir", .type = CFG_STRING, .offset = OFF(dir), .def = "./cairn-data",
     .flags = CFG_IMMUTABLE},
    {.name = "fsync", .alias = "appendfsync", .type = CFG_ENUM, .offset = OFF(fsync),
     .def = "everysec", .enums = fsync_names},
    {.name = "requirepass", .type = CFG_STRING, .offset = OFF(requirepass), .def = ""},
    {.name = "maxmemory", .type = CFG_BYTES, .offset = OFF(maxmemory), .def = "0"},
    {.name = "maxmemory-policy", .type = CFG_ENUM, .offset = OFF(maxmemory_policy),
     .def = "noeviction", .enums = maxmemory_policy_names},
    {.name = "maxclients", .type = CFG_INT, .offset = OFF(maxclients), .def = "10000", .min = 1,
     .max = UINT32_MAX},
    {.name = "timeout", .type = CFG_INT, .offset = OFF(timeout), .def = "0", .min = 0,
     .max = INT32_MAX},
    {.name = "proto-max-bulk-len", .type = CFG_BYTES, .offset = OFF(proto_max_bulk_len),
     .def = "512mb", .min = MB, .max = INT64_MAX},
    {.name = "proto-max-multibulk-len", .type = CFG_INT, .offset = OFF(proto_max_multibulk_len),
     .def = "1048576", .min = 1, .max = INT32_MAX},
    {.name = "proto-inline-max-size", .type = CFG_BYTES, .offset = OFF(proto_inline_max_size),
     .def = "64kb", .min = 1024, .max = INT64_MAX},
    {.name = "client-output-buffer-limit", .type = CFG_BYTES,
     .offset = OFF(client_output_buffer_limit), .def = "256mb"},
    {.name = "wal-snapshot-size", .type = CFG_BYTES, .offset = OFF(wal_snapshot_size),
     .def = "64mb", .min = MB, .max = INT64_MAX},
    {.name = "hz", .type = CFG_INT, .offset = OFF(hz), .def = "10", .min = 1, .max = 500},
    {.name = "loglevel", .type = CFG_ENUM, .offset = OFF(loglevel), .def = "notice",
     .enums = loglevel_names},
    {.name = "logfile", .type = CFG_STRING, .offset = OFF(logfile), .def = ""},
    {.name = "manager", .type = CFG_STRING, .offset = OFF(manager), .def = "",
     .flags = CFG_IMMUTABLE},
    {.name = "advertise", .type = CFG_STRING, .offset = OFF(advertise), .def = "",
     .flags = CFG_IMMUTABLE},
    {.name = "zone", .type = CFG_STRING, .offset = OFF(zone), .def = "", .flags = CFG_IMMUTABLE},
    {.name = "weight", .type = CFG_INT, .offset = OFF(weight), .def = "1", .min = 1, .max = 1000},
    {.name = "repl-lease-ms", .type = CFG_INT, .offset = OFF(repl_lease_ms), .def = "400",
     .min = 50, .max = 60000, .flags = CFG_IMMUTABLE},
    {.name = "repl-grace-ms", .type = CFG_INT, .offset = OFF(repl_grace_ms), .def = "800",
     .min = 100, .max = 120000, .flags = CFG_IMMUTABLE},
    {.name = "repl-backlog-size", .type = CFG_BYTES, .offset = OFF(repl_backlog_size),
     .def = "64mb", .min = MB, .max = INT64_MAX},
    {.name = NULL},
};

/* True if argv word `a` is the flag --config (any case), with its value
 * after '=' in *inline_value (NULL when the value is the next word). */
static bool is_config_flag(const char *a, const char **inline_value)
{
    if (strncmp(a, "--", 2) != 0) return false;
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    *inline_value = eq ? eq + 1 : NULL;
    return str_eq_nocase(name, n, "config");
}

int node_config_load(node_config *c, int argc, char **argv, int first, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    cfg_defaults(node_config_table, c);

    /* The flags minus --config, for cfg_load_args, which knows only settings.
     * A flag without '=' travels with the word after it, so a value that
     * reads "--config" (a password, say) is not taken for the flag. */
    int n = argc > first ? argc - first : 0;
    char **rest = cairn_malloc(sizeof(*rest) * ((size_t)n + 1));
    int nrest = 0;
    int rc = 0;
    for (int i = first; i < argc; i++) {
        const char *value;
        if (is_config_flag(argv[i], &value)) {
            if (!value && i + 1 >= argc) {
                if (err && errlen) snprintf(err, errlen, "--config: missing value");
                rc = CAIRN_EINVAL;
                goto fail_rest;
            }
            if (!value) i++;
            continue;
        }
        rest[nrest++] = argv[i];
        if (strncmp(argv[i], "--", 2) == 0 && !strchr(argv[i], '=') && i + 1 < argc)
            rest[nrest++] = argv[++i];
    }
    rest[nrest] = NULL;

    const char *path = cfg_find_flag(argc, argv, first, "config");
    if (path) {
        c->config_file = cairn_strndup(path, strlen(path));
        rc = cfg_load_file(node_config_table, c, path, err, errlen);
        if (rc < 0) goto fail_rest;
    }
    rc = cfg_load_args(node_config_table, c, nrest, rest, 0, err, errlen);
    if (rc < 0) goto fail_rest;
    char bad[128];
    if (c->manager && c->manager[0] && !rconn_addr_list_ok(c->manager, bad, sizeof(bad))) {
        if (err && errlen)
            snprintf(err, errlen, "manager: '%s' is not an ip:port (e.g. 127.0.0.1:7100; several: a,b)", bad);
        rc = CAIRN_EINVAL;
        goto fail_rest;
    }
    /* Invariant 4 needs the secondary to wait longer than the lease. */
    if (c->repl_grace_ms <= c->repl_lease_ms) {
        if (err && errlen)
            snprintf(err, errlen, "repl-grace-ms (%lld) must be greater than repl-lease-ms (%lld)",
                     (long long)c->repl_grace_ms, (long long)c->repl_lease_ms);
        rc = CAIRN_EINVAL;
        goto fail_rest;
    }
    cairn_free(rest);
    return 0;

fail_rest:
    cairn_free(rest);
    node_config_free(c);
    return rc;
}

void node_config_free(node_config *c)
{
    cfg_free(node_config_table, c);
    cairn_free(c->config_file);
    memset(c, 0, sizeof(*c));
}
