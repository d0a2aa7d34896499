/*
 * mjson.h — the manager's JSON documents: encode and decode, nothing else.
 *
 * The same texts live in etcd and travel to nodes, gateways and ctl:
 *
 *   etcd /cairn/NAME/nodes/<id>
 *     {"id":"<16 hex>","addr":"host:port","zone":"z","weight":1}
 *   etcd /cairn/NAME/shards/<n>
 *     {"shard":n,"version":v,"replicas":3,"primary":"<id>",
 *      "secondaries":["<id>",..],"learners":["<id>",..]}
 *     (replies to nodes add "addrs":{"<id>":"host:port",..} — see mstate)
 *   etcd /cairn/NAME/manager/leader
 *     {"id":"<manager id>","addr":"host:port"}
 *   CAIRN HEARTBEAT <json>
 *     {"id","addr","zone","weight","shard","version",
 *      "role":"primary|secondary|learner|none","last_lsn","durable_lsn","commit_lsn",
 *      "floor","drain":true}
 *     (only id and addr are required; numbers are JSON integers; "drain":
 *     the node takes CAIRN DRAIN, so a switchover can hand over without a
 *     lost or failed write — src/node/replica.c)
 *
 * Node ids are 64-bit, written as exactly 16 lower-case hex digits; 0 is
 * not an id.  Decoders accept 1..16 hex digits of either case.
 *
 * Decoders are strict (right types, bounds, limits on every string) because
 * their input comes from the network or from etcd that anyone may write:
 * they return 0 or CAIRN_EPROTO with a message in err.  Pure; jansson only.
 */
#ifndef CAIRN_MJSON_H
#define CAIRN_MJSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"
#include "lib/repl.h"
#include "manager/placement.h"

#define MJSON_ADDR_MAX 256 /* bytes, with the NUL */
#define MJSON_ZONE_MAX 64
#define MJSON_WEIGHT_MAX 1000000
#define MJSON_ID_LEN 16

/* The registry record of one node. */
typedef struct mjson_node {
    uint64_t id;
    char addr[MJSON_ADDR_MAX];
    char zone[MJSON_ZONE_MAX];
    int64_t weight; /* 0..MJSON_WEIGHT_MAX */
} mjson_node;

/* One heartbeat: the node's record and what it reports. */
typedef struct mjson_heartbeat {
    mjson_node node;
    bool has_weight; /* "weight" was present */
    uint32_t shard;  /* 0 = none */
    uint64_t version;
    enum repl_role role;
    uint64_t last_lsn, durable_lsn, commit_lsn;
    uint64_t floor; /* "floor": the node acts at no version up to this one */
    bool can_drain; /* "drain": true */
} mjson_heartbeat;

/* out gets 16 hex digits and a NUL. */
void mjson_id_fmt(uint64_t id, char out[MJSON_ID_LEN + 1]);
/* 1..16 hex digits, not all zero. */
bool mjson_id_parse(const char *s, size_t n, uint64_t *id);
/* "primary", "secondary", "learner", "none". */
const char *mjson_role_name(enum repl_role r);
/* "host:port" with a non-empty host, a port 1..65535, no control bytes. */
bool mjson_addr_valid(const char *s, size_t n);

/* New references (the caller json_decref()s them). */
json_t *mjson_shard_encode(const pl_shard *s);
json_t *mjson_node_encode(const mjson_node *n);

int mjson_shard_decode(const char *text, size_t len, pl_shard *out, char *err, size_t errlen);
int mjson_node_decode(const char *text, size_t len, mjson_node *out, char *err, size_t errlen);
int mjson_heartbeat_decode(const char *text, size_t len, mjson_heartbeat *out, char *err,
                           size_t errlen);
/* The leader record: id and addr into out buffers (NUL-terminated,
 * truncated to their sizes).  0 or CAIRN_EPROTO. */
int mjson_leader_decode(const char *text, size_t len, char *id, size_t idlen, char *addr,
                        size_t addrlen);

/* Append the compact text of j to b (keys in insertion order). */
void mjson_append(cairn_buf *b, const json_t *j);

#endif
