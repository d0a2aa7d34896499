/* TEMPORARY: weak stand-ins so the tree links until src/lib/repl.c lands
 * (its strong definitions replace these).  Delete with that commit. */
#include <stdlib.h>

#include "lib/repl.h"

#define WEAK __attribute__((weak))
static repl_config none;
WEAK const char *repl_msg_name(enum repl_msg_type t) { (void)t; return "?"; }
WEAK repl_t *repl_create(uint64_t s, const repl_params *p, const repl_io *io) { (void)s; (void)p; (void)io; return NULL; }
WEAK void repl_destroy(repl_t *r) { (void)r; }
WEAK void repl_set_log(repl_t *r, uint64_t a, uint64_t b, uint64_t c) { (void)r; (void)a; (void)b; (void)c; }
WEAK void repl_set_config(repl_t *r, const repl_config *c, int64_t n) { (void)r; (void)c; (void)n; }
WEAK void repl_local_append(repl_t *r, uint64_t l, int64_t n) { (void)r; (void)l; (void)n; }
WEAK void repl_local_durable(repl_t *r, uint64_t l, int64_t n) { (void)r; (void)l; (void)n; }
WEAK void repl_recv(repl_t *r, const repl_msg *m, int64_t n) { (void)r; (void)m; (void)n; }
WEAK void repl_tick(repl_t *r, int64_t n) { (void)r; (void)n; }
WEAK void repl_snapshot_sent(repl_t *r, uint64_t t, uint64_t l, int64_t n) { (void)r; (void)t; (void)l; (void)n; }
WEAK void repl_snapshot_failed(repl_t *r, uint64_t t, int64_t n) { (void)r; (void)t; (void)n; }
WEAK void repl_snapshot_loaded(repl_t *r, uint64_t l, uint64_t v, int64_t n) { (void)r; (void)l; (void)v; (void)n; }
WEAK enum repl_role repl_role(const repl_t *r) { (void)r; return REPL_NONE; }
WEAK const repl_config *repl_config_get(const repl_t *r) { (void)r; return &none; }
WEAK bool repl_can_serve(const repl_t *r, int64_t n) { (void)r; (void)n; return false; }
WEAK uint64_t repl_commit(const repl_t *r) { (void)r; return 0; }
WEAK uint64_t repl_last_lsn(const repl_t *r) { (void)r; return 0; }
WEAK uint64_t repl_match(const repl_t *r, uint64_t x) { (void)r; (void)x; return 0; }
