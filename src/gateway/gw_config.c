#include "gateway/gw_config.h"

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"
#include "lib/mem.h"
#include "net/rconn.h"

#define OFF(f) offsetof(gw_config, f)

static const char *const read_policies[] = {"primary", "replica", "prefer-replica", "any", NULL};
static const char *const policies[] = {"random", "round-robin", "weighted-round-robin",
                                       "least-outstanding", "p2c", "ewma", NULL};
static const char *const loglevels[] = {"debug", "verbose", "notice", "warning", NULL};

const cfg_def gw_config_table[] = {
    {.name = "bind", .type = CFG_STRING, .offset = OFF(bind), .def = "127.0.0.1", .flags = CFG_IMMUTABLE},
    {.name = "port", .type = CFG_INT, .offset = OFF(port), .def = "6380", .min = 1, .max = 65535,
     .flags = CFG_IMMUTABLE},
    {.name = "manager", .type = CFG_STRING, .offset = OFF(manager), .def = "127.0.0.1:7100",
     .flags = CFG_IMMUTABLE},
    {.name = "read-policy", .type = CFG_ENUM, .offset = OFF(read_policy), .def = "primary",
     .enums = read_policies},
    {.name = "read-your-writes", .type = CFG_BOOL, .offset = OFF(read_your_writes), .def = "yes"},
    {.name = "policy", .type = CFG_ENUM, .offset = OFF(policy), .def = "p2c", .enums = policies},
    {.name = "backend-conns", .type = CFG_INT, .offset = OFF(backend_conns), .def = "2", .min = 1,
     .max = 8, .flags = CFG_IMMUTABLE},
    {.name = "timeout-ms", .type = CFG_INT, .offset = OFF(timeout_ms), .def = "5000", .min = 10,
     .max = 600000, .flags = CFG_IMMUTABLE},
    {.name = "retry-ms", .type = CFG_INT, .offset = OFF(retry_ms), .def = "3000", .min = 0, .max = 600000},
    {.name = "maxclients", .type = CFG_INT, .offset = OFF(maxclients), .def = "10000", .min = 1,
     .max = 1000000},
    {.name = "slow-start-ms", .type = CFG_INT, .offset = OFF(slow_start_ms), .def = "5000", .min = 0,
     .max = 600000},
    {.name = "loglevel", .type = CFG_ENUM, .offset = OFF(loglevel), .def = "notice", .enums = loglevels},
    {.name = "logfile", .type = CFG_STRING, .offset = OFF(logfile), .def = ""},
    /* Not CFG_IMMUTABLE: Redis lets CONFIG SET change it (clients already
     * authenticated stay so); the gateway has no CONFIG SET today. */
    {.name = "requirepass", .type = CFG_STRING, .offset = OFF(requirepass), .def = ""},
    {.name = NULL},
};

int gw_config_load(gw_config *c, int argc, char **argv, int first, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    cfg_defaults(gw_config_table, c);
    const char *path = cfg_find_flag(argc, argv, first, "config");
    int rc;
    if (path) {
        c->config_file = cairn_strndup(path, strlen(path));
        if ((rc = cfg_load_file(gw_config_table, c, path, err, errlen)) < 0) goto fail;
    }
    /* --config itself is not a setting: pass the rest on. */
    char **rest = cairn_malloc(sizeof(char *) * (size_t)(argc + 1));
    int nrest = 0;
    for (int i = first; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            i++;
            continue;
        }
        if (strncmp(argv[i], "--config=", 9) == 0) continue;
        rest[nrest++] = argv[i];
    }
    rest[nrest] = NULL;
    rc = cfg_load_args(gw_config_table, c, nrest, rest, 0, err, errlen);
    cairn_free(rest);
    if (rc < 0) goto fail;
    char bad[128];
    if (!rconn_addr_list_ok(c->manager, bad, sizeof(bad))) {
        snprintf(err, errlen, "manager: '%s' is not an ip:port (e.g. 127.0.0.1:7100; several: a,b)", bad);
        rc = CAIRN_EINVAL;
        goto fail;
    }
    return 0;
fail:
    gw_config_free(c);
    return rc;
}

void gw_config_free(gw_config *c)
{
    cfg_free(gw_config_table, c);
    cairn_free(c->config_file);
    c->config_file = NULL;
}

bool gw_config_auth_required(const gw_config *c) { return c->requirepass && c->requirepass[0]; }

bool gw_config_password_ok(const gw_config *c, const char *pass, size_t len)
{
    const unsigned char *want = (const unsigned char *)c->requirepass;
    size_t n = strlen(c->requirepass);
    /* One pass over the password whatever the guess: no early exit, and the
     * guess is read cyclically so its length does not steer the loop. */
    volatile unsigned char diff = (unsigned char)(len != n);
    for (size_t i = 0; i < n; i++) {
        unsigned char g = len ? (unsigned char)pass[i % len] : 0;
        diff |= (unsigned char)(want[i] ^ g);
    }
    return diff == 0;
}

bool gw_config_exposed(const gw_config *c)
{
    if (gw_config_auth_required(c)) return false;
    struct in_addr a;
    if (inet_pton(AF_INET, c->bind, &a) != 1) return true;
    return (ntohl(a.s_addr) >> 24) != 127;
}
