/*
 * gwreport.h — the gateways' latest reports, kept by the active manager
 * for CAIRN STATUS (and so for `cairn ctl status`).
 *
 * Each gateway sends, about once a second (src/gateway/gw_report.c):
 *
 *   CAIRN GATEWAY-REPORT <gateway id> <listen host:port> <json>
 *
 *   json: {"pid","uptime_s","topology_version","clients","commands",
 *          "connections","errors","retried",
 *          "nodes":[{"id","addr","shard","role","requests","errors",
 *                    "retries","outstanding","p50_us","p99_us","p999_us",
 *                    "ejected","slow_start","healthy"},..]}
 *
 *   Every field is optional; numbers are JSON integers (latencies in
 *   microseconds, counts since the gateway started), "ejected",
 *   "slow_start" and "healthy" booleans, the rest strings.  Unknown fields
 *   are dropped (a newer gateway may say more); a known field of the wrong
 *   type refuses the whole report.
 *
 * Reports live in memory only: a gateway is stateless and its numbers
 * die with it.  A report older than GWREP_TTL_MS is dropped, so a gateway
 * that stopped reporting (killed, cut off) leaves STATUS within that.  A
 * new report replaces the gateway's previous one.  At most GWREP_MAX
 * gateways are kept; beyond that the stalest is forgotten.
 *
 * Pure: jansson only; times are arguments (ms on one monotonic clock).
 */
#ifndef CAIRN_GWREPORT_H
#define CAIRN_GWREPORT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "manager/mjson.h"

#define GWREP_TTL_MS 5000
#define GWREP_MAX 256
#define GWREP_ID_MAX 128          /* bytes, with the NUL */
#define GWREP_TEXT_MAX (256 * 1024)
#define GWREP_NODES_MAX 1024

typedef struct gwrep_row {
    char id[GWREP_ID_MAX];
    char addr[MJSON_ADDR_MAX];
    int64_t at;  /* when it arrived */
    json_t *doc; /* the report, checked and stripped to the known fields */
} gwrep_row;

typedef struct gwrep_table {
    gwrep_row *rows;
    size_t n, cap;
} gwrep_table;

void gwrep_init(gwrep_table *t);
void gwrep_close(gwrep_table *t);

/* Store the report of gateway `id` listening at `addr` (neither
 * NUL-terminated), received at `now`.  0, or CAIRN_EPROTO with a message
 * in err (bad id, address or document; the table is unchanged). */
int gwrep_put(gwrep_table *t, const char *id, size_t idlen, const char *addr, size_t addrlen,
              const char *json, size_t len, int64_t now, char *err, size_t errlen);

/* Drop the reports older than GWREP_TTL_MS at `now`. */
void gwrep_expire(gwrep_table *t, int64_t now);

/* Number of reports younger than GWREP_TTL_MS at `now`. */
size_t gwrep_count(const gwrep_table *t, int64_t now);

/* STATUS's "gateways": [{"id","addr","age_ms", <report fields>..}, ..] for
 * the live reports, in the order gateways first reported.  New reference. */
json_t *gwrep_json(const gwrep_table *t, int64_t now);

#endif
