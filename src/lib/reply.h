/*
 * reply.h — RESP reply encoding into a cairn_buf (RESP2 and RESP3 forms).
 *
 * Every function appends one complete element (or, for the *_len ones, the
 * header of an aggregate whose elements the caller appends next).  `proto`
 * (2 or 3) picks the encoding where RESP2 and RESP3 differ.
 */
#ifndef CAIRN_REPLY_H
#define CAIRN_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "lib/buf.h"

void reply_simple(cairn_buf *b, const char *s);           /* +s */
void reply_ok(cairn_buf *b);                               /* +OK */
/* -ERR-style error.  `msg` is the full text after '-' (e.g. "ERR syntax
 * error", "WRONGTYPE ..."); CR/LF inside it are replaced by spaces. */
void reply_error(cairn_buf *b, const char *msg);
void reply_errorf(cairn_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void reply_int(cairn_buf *b, int64_t v);                   /* :v */
void reply_bulk(cairn_buf *b, const void *p, size_t n);    /* $n p */
void reply_bulk_str(cairn_buf *b, const char *s);
void reply_bulk_i64(cairn_buf *b, int64_t v);
void reply_bulk_u64(cairn_buf *b, uint64_t v);
void reply_null(cairn_buf *b, int proto);                  /* $-1 / _ */
void reply_null_array(cairn_buf *b, int proto);            /* *-1 / _ */
void reply_array(cairn_buf *b, size_t n);                  /* *n */
void reply_map(cairn_buf *b, int proto, size_t n);         /* *2n / %n */
void reply_set(cairn_buf *b, int proto, size_t n);         /* *n / ~n */
void reply_verbatim(cairn_buf *b, int proto, const char *p, size_t n); /* $n / =n txt: */
void reply_double(cairn_buf *b, int proto, double d);      /* bulk / ,d */
void reply_bool(cairn_buf *b, int proto, int v);           /* :0/1 / #t #f */

#endif
