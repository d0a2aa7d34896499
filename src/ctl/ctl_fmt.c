/*
 * ctl_fmt.c — see ctl_fmt.h.  Example of `cairn ctl status`:
 *
 *   cluster cairn, active manager m1 at 127.0.0.1:7100
 *
 *   SHARD 1  version 4  replicas 3 of 3
 *     ROLE       NODE              ADDR             LAST_LSN  COMMIT  LAG  HEALTH
 *     primary    00000000000000a1  127.0.0.1:7001   120       120     -    healthy
 *     secondary  00000000000000a2  127.0.0.1:7002   118       118     2    healthy
 *
 *   NODES
 *     ID                ADDR             ZONE  WEIGHT  HEALTH     SHARD  ROLE       SEEN
 *     00000000000000a1  127.0.0.1:7001   z1    1       healthy    1      primary    40ms ago
 *
 *   GATEWAYS (1)
 *   gateway 127.0.0.1:6380  id box:6380-4242  up 63s  commands 5210  clients 2  (reported 420ms ago)
 *     NODE ADDR             ROLE       SHARD  REQUESTS  ERRORS  OUTSTANDING  P50_US  P99_US  P999_US  STATE
 *     127.0.0.1:7001        primary    1      2604      0       0            128     512     1024     ok
 *
 * Latencies are the gateway's histogram buckets (powers of two, upper
 * bounds), over the gateway's lifetime.
 */
#include "ctl/ctl_fmt.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/err.h"

static void outf(cairn_buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void outf(cairn_buf *out, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    buf_append(out, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
}

static const char *str(json_t *o, const char *key, const char *dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : dflt;
}

static long long num(json_t *o, const char *key, long long dflt)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : dflt;
}

/* The nodes array entry for id, or NULL. */
static json_t *node_by_id(json_t *nodes, const char *id)
{
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
        if (strcmp(str(n, "id", ""), id) == 0) return n;
    return NULL;
}

static void member_row(cairn_buf *out, json_t *shard, json_t *nodes, const char *role,
                       const char *id)
{
    json_t *n = node_by_id(nodes, id);
    json_t *addrs = json_object_get(shard, "addrs");
    const char *addr = str(addrs, id, n ? str(n, "addr", "?") : "?");
    char lsn[24] = "-", commit[24] = "-", lag[24] = "-";
    if (n && json_is_integer(json_object_get(n, "last_seen_ms_ago"))) {
        snprintf(lsn, sizeof(lsn), "%lld", num(n, "last_lsn", 0));
        snprintf(commit, sizeof(commit), "%lld", num(n, "commit_lsn", 0));
    }
    json_t *l = json_object_get(json_object_get(shard, "lag"), id);
    if (json_is_integer(l)) snprintf(lag, sizeof(lag), "%lld", (long long)json_integer_value(l));
    const char *health = !n ? "unknown" : json_is_true(json_object_get(n, "healthy")) ? "healthy"
                                                                                      : "UNHEALTHY";
    outf(out, "  %-10s %-17s %-21s %-9s %-9s %-6s %s\n", role, id, addr, lsn, commit, lag, health);
}

static void gateway_rows(cairn_buf *out, json_t *gateways)
{
    outf(out, "\nGATEWAYS (%zu)\n", json_array_size(gateways));
    if (json_array_size(gateways) == 0) outf(out, "  none reporting\n");
    size_t i;
    json_t *g;
    json_array_foreach(gateways, i, g) {
        outf(out, "gateway %s  id %s  up %llds  commands %lld  clients %lld  (reported %lldms ago)\n",
             str(g, "addr", "?"), str(g, "id", "?"), num(g, "uptime_s", 0), num(g, "commands", 0),
             num(g, "clients", 0), num(g, "age_ms", 0));
        json_t *nodes = json_object_get(g, "nodes");
        if (json_array_size(nodes) == 0) {
            outf(out, "  no nodes known yet\n");
            continue;
        }
        outf(out, "  %-21s %-10s %-6s %-9s %-7s %-12s %-7s %-7s %-8s %s\n", "NODE ADDR", "ROLE",
             "SHARD", "REQUESTS", "ERRORS", "OUTSTANDING", "P50_US", "P99_US", "P999_US", "STATE");
        size_t k;
        json_t *n;
        json_array_foreach(nodes, k, n) {
            char shard[16] = "-";
            if (num(n, "shard", 0) > 0) snprintf(shard, sizeof(shard), "%lld", num(n, "shard", 0));
            const char *state = json_is_true(json_object_get(n, "ejected"))      ? "EJECTED"
                                : json_is_true(json_object_get(n, "slow_start")) ? "slow-start"
                                : json_is_false(json_object_get(n, "healthy"))   ? "UNHEALTHY"
                                                                                 : "ok";
            outf(out, "  %-21s %-10s %-6s %-9lld %-7lld %-12lld %-7lld %-7lld %-8lld %s\n",
                 str(n, "addr", "?"), str(n, "role", "none"), shard, num(n, "requests", 0),
                 num(n, "errors", 0), num(n, "outstanding", 0), num(n, "p50_us", 0),
                 num(n, "p99_us", 0), num(n, "p999_us", 0), state);
        }
    }
}

int ctl_fmt_status(const char *text, size_t len, cairn_buf *out)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    json_t *mgr = json_object_get(j, "manager"), *nodes = json_object_get(j, "nodes"),
           *shards = json_object_get(j, "shards");
    if (!json_is_object(mgr) || !json_is_array(nodes) || !json_is_array(shards)) {
        json_decref(j);
        return CAIRN_EPROTO;
    }
    outf(out, "cluster %s, active manager %s at %s%s\n", str(mgr, "cluster", "?"),
         str(mgr, "id", "?"), str(mgr, "addr", "?"),
         json_is_true(json_object_get(mgr, "active")) ? "" : " (NOT ACTIVE)");
    size_t i;
    json_t *s;
    if (json_array_size(shards) == 0) outf(out, "\nno shards yet (cairn ctl shard create --replicas N)\n");
    json_array_foreach(shards, i, s) {
        json_t *sec = json_object_get(s, "secondaries"), *lrn = json_object_get(s, "learners");
        size_t members = 1 + json_array_size(sec) + json_array_size(lrn);
        outf(out, "\nSHARD %lld  version %lld  replicas %zu of %lld\n", num(s, "shard", 0),
             num(s, "version", 0), members, num(s, "replicas", 0));
        outf(out, "  %-10s %-17s %-21s %-9s %-9s %-6s %s\n", "ROLE", "NODE", "ADDR", "LAST_LSN",
             "COMMIT", "LAG", "HEALTH");
        member_row(out, s, nodes, "primary", str(s, "primary", "?"));
        size_t k;
        json_t *id;
        json_array_foreach(sec, k, id)
            if (json_is_string(id)) member_row(out, s, nodes, "secondary", json_string_value(id));
        json_array_foreach(lrn, k, id)
            if (json_is_string(id)) member_row(out, s, nodes, "learner", json_string_value(id));
    }
    outf(out, "\nNODES (%zu)\n", json_array_size(nodes));
    outf(out, "  %-17s %-21s %-8s %-7s %-10s %-6s %-10s %s\n", "ID", "ADDR", "ZONE", "WEIGHT",
         "HEALTH", "SHARD", "ROLE", "SEEN");
    json_t *n;
    json_array_foreach(nodes, i, n) {
        char seen[32] = "never", shard[16] = "-";
        json_t *ago = json_object_get(n, "last_seen_ms_ago");
        if (json_is_integer(ago)) snprintf(seen, sizeof(seen), "%lldms ago", (long long)json_integer_value(ago));
        if (num(n, "shard", 0) > 0) snprintf(shard, sizeof(shard), "%lld", num(n, "shard", 0));
        const char *zone = str(n, "zone", "");
        outf(out, "  %-17s %-21s %-8s %-7lld %-10s %-6s %-10s %s\n", str(n, "id", "?"),
             str(n, "addr", "?"), zone[0] ? zone : "-", num(n, "weight", 0),
             json_is_true(json_object_get(n, "healthy")) ? "healthy" : "UNHEALTHY", shard,
             str(n, "role", "none"), seen);
    }
    json_t *gateways = json_object_get(j, "gateways");
    if (json_is_array(gateways)) gateway_rows(out, gateways); /* absent from older managers */
    json_decref(j);
    return 0;
}

int ctl_fmt_config(const char *text, size_t len, const char *title, cairn_buf *out)
{
    json_t *j = json_loadb(text, len, 0, NULL);
    if (!json_is_object(j) || !json_is_integer(json_object_get(j, "shard"))) {
        json_decref(j);
        return CAIRN_EPROTO;
    }
    json_t *addrs = json_object_get(j, "addrs");
    const char *p = str(j, "primary", "?");
    outf(out, "shard %lld %s: version %lld, replicas %lld\n", num(j, "shard", 0), title,
         num(j, "version", 0), num(j, "replicas", 0));
    outf(out, "  primary    %s %s\n", p, str(addrs, p, "?"));
    const char *roles[] = {"secondaries", "learners"};
    const char *names[] = {"secondary", "learner"};
    for (int r = 0; r < 2; r++) {
        size_t i;
        json_t *id;
        json_array_foreach(json_object_get(j, roles[r]), i, id) {
            const char *s = json_is_string(id) ? json_string_value(id) : "?";
            outf(out, "  %-10s %s %s\n", names[r], s, str(addrs, s, "?"));
        }
    }
    json_t *so = json_object_get(j, "switchover");
    if (json_is_object(so) && json_is_true(json_object_get(so, "drained"))) {
        outf(out, "  no reads or writes for %lld ms: the old primary drained at LSN %lld%s\n",
             num(so, "paused_ms", 0), num(so, "drained_lsn", 0),
             json_is_true(json_object_get(so, "serving")) ? ""
                                                          : " (the new primary does not serve yet)");
    }
    json_decref(j);
    return 0;
}
