/*
 * ctl_fmt.h — human renderings of the manager's JSON replies for ctl.
 * Pure: JSON text in, text appended to a buffer out.
 */
#ifndef CAIRN_CTL_FMT_H
#define CAIRN_CTL_FMT_H

#include <stddef.h>

#include "lib/buf.h"

/* CAIRN STATUS -> the status tables.  0, or CAIRN_EPROTO (not the JSON we
 * expect) with nothing appended. */
int ctl_fmt_status(const char *json, size_t len, cairn_buf *out);

/* A shard configuration reply -> one line per role, headed by `title`
 * ("created", "switched over", ...); a switchover's reply adds a line
 * with how long the shard served no writes. */
int ctl_fmt_config(const char *json, size_t len, const char *title, cairn_buf *out);

#endif
