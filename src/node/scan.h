/*
 * scan.h — the argument parsing SCAN and HSCAN share (Redis 7.0's
 * parseScanCursorOrReply and option loop).
 */
#ifndef CAIRN_SCAN_H
#define CAIRN_SCAN_H

#include "node/node.h"

typedef struct scan_opts {
    uint64_t cursor;
    int64_t count;             /* default 10 */
    const resp_arg *pattern;   /* NULL when absent or "*" */
    const resp_arg *type;      /* SCAN only */
} scan_opts;

/* Parse argv[cursor_at] as the cursor; options start right after it.
 * Replies with the error and returns false on bad input. */
bool scan_parse_cursor(client_t *c, size_t cursor_at, uint64_t *cursor);
bool scan_parse(client_t *c, size_t cursor_at, bool allow_type, scan_opts *o);

#endif
