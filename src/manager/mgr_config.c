/*
 * mgr_config.c — the manager's settings table (see mgr_config.h).
 */
#include "manager/mgr_config.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/mem.h"

static const char *const loglevel_names[] = {"debug", "verbose", "notice", "warning", NULL};
_Static_assert((int)LOG_DEBUG == 0 && (int)LOG_INFO == 1 && (int)LOG_NOTICE == 2 &&
                   (int)LOG_WARN == 3,
               "loglevel names must line up with enum log_level");

#define OFF(f) offsetof(mgr_config, f)

const cfg_def mgr_config_table[] = {
    {.name = "etcd", .type = CFG_STRING, .offset = OFF(etcd), .def = "http://127.0.0.1:2379",
     .flags = CFG_IMMUTABLE},
    {.name = "cluster", .type = CFG_STRING, .offset = OFF(cluster), .def = "cairn",
     .flags = CFG_IMMUTABLE},
    {.name = "port", .type = CFG_INT, .offset = OFF(port), .def = "7100", .min = 1, .max = 65535,
     .flags = CFG_IMMUTABLE},
    {.name = "bind", .type = CFG_STRING, .offset = OFF(bind), .def = "127.0.0.1",
     .flags = CFG_IMMUTABLE},
    {.name = "id", .type = CFG_STRING, .offset = OFF(id), .def = "", .flags = CFG_IMMUTABLE},
    {.name = "lease-ttl", .type = CFG_INT, .offset = OFF(lease_ttl), .def = "2", .min = 1,
     .max = 60, .flags = CFG_IMMUTABLE},
    {.name = "etcd-timeout", .type = CFG_INT, .offset = OFF(etcd_timeout), .def = "500",
     .min = 10, .max = 10000, .flags = CFG_IMMUTABLE},
    {.name = "switchover-timeout", .type = CFG_INT, .offset = OFF(switchover_timeout),
     .def = "2000", .min = 20, .max = 60000},
    {.name = "dir", .type = CFG_STRING, .offset = OFF(dir), .def = "", .flags = CFG_IMMUTABLE},
    {.name = "loglevel", .type = CFG_ENUM, .offset = OFF(loglevel), .def = "notice",
     .enums = loglevel_names},
    {.name = "logfile", .type = CFG_STRING, .offset = OFF(logfile), .def = ""},
    {.name = NULL},
};

int mgr_config_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Each comma-separated entry is [http[s]://]host:port[/] (what etcd.c
 * accepts), with a numeric port. */
static bool etcd_endpoints_ok(const char *list)
{
    for (const char *p = list;;) {
        while (*p == ' ') p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '/')) len--;
        size_t digits = 0;
        while (digits < len && p[len - 1 - digits] >= '0' && p[len - 1 - digits] <= '9') digits++;
        if (digits == 0 || digits > 5 || digits + 1 >= len || p[len - 1 - digits] != ':') return false;
        if (!end) return true;
        p = end + 1;
    }
}

int mgr_config_load(mgr_config *c, int argc, char **argv, int first, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    cfg_defaults(mgr_config_table, c);
    /* --config FILE first, then every other flag (which must be a setting). */
    int n = argc > first ? argc - first : 0;
    char **rest = cairn_malloc(sizeof(*rest) * ((size_t)n + 1));
    int nrest = 0, rc = 0;
    const char *path = NULL;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                snprintf(err, errlen, "--config: missing value");
                rc = CAIRN_EINVAL;
                goto fail_rest;
            }
            path = argv[++i];
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) {
            path = argv[i] + 9;
            continue;
        }
        rest[nrest++] = argv[i];
        if (strncmp(argv[i], "--", 2) == 0 && !strchr(argv[i], '=') && i + 1 < argc)
            rest[nrest++] = argv[++i];
    }
    if (path && (rc = cfg_load_file(mgr_config_table, c, path, err, errlen)) < 0) goto fail_rest;
    if ((rc = cfg_load_args(mgr_config_table, c, nrest, rest, 0, err, errlen)) < 0)
        goto fail_rest;
    if (!etcd_endpoints_ok(c->etcd)) {
        snprintf(err, errlen, "--etcd: '%s' is not a list of etcd endpoints (e.g. http://127.0.0.1:2379)",
                 c->etcd);
        rc = CAIRN_EINVAL;
        goto fail_rest;
    }
    if (!mgr_config_name_ok(c->cluster)) {
        snprintf(err, errlen, "--cluster: '%s' is not a name (1 to 64 of A-Z a-z 0-9 . _ -)",
                 c->cluster);
        rc = CAIRN_EINVAL;
        goto fail_rest;
    }
    if (c->id[0] && !mgr_config_name_ok(c->id)) {
        snprintf(err, errlen, "--id: '%s' is not a name (1 to 64 of A-Z a-z 0-9 . _ -)", c->id);
        rc = CAIRN_EINVAL;
        goto fail_rest;
    }
    cairn_free(rest);
    return 0;

fail_rest:
    cairn_free(rest);
    mgr_config_free(c);
    return rc;
}

void mgr_config_free(mgr_config *c)
{
    cfg_free(mgr_config_table, c);
    memset(c, 0, sizeof(*c));
}
