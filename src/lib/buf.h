/*
 * buf.h — a growable byte buffer (embedded by its owner: init/close).
 *
 * `data[0..len)` holds the bytes; `pos` marks how much of the front has been
 * consumed (so readers can advance without memmove on every step).  Pointers
 * into `data` stay valid until the next call that may grow or compact it.
 */
#ifndef CAIRN_BUF_H
#define CAIRN_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cairn_buf {
    char *data;
    size_t len;   /* bytes written */
    size_t pos;   /* bytes consumed from the front */
    size_t cap;
} cairn_buf;

void buf_init(cairn_buf *b);
void buf_close(cairn_buf *b);
/* Make room for at least `n` more bytes after len; returns data + len.
 * Compacts first (moving bytes to index 0) when pos >= len / 2: a caller
 * keeping offsets into the buffer must compact before that point itself. */
char *buf_reserve(cairn_buf *b, size_t n);
void buf_append(cairn_buf *b, const void *p, size_t n);
void buf_append_str(cairn_buf *b, const char *s);
void buf_append_u64(cairn_buf *b, uint64_t v);
void buf_append_i64(cairn_buf *b, int64_t v);
/* Drop consumed bytes from the front. */
void buf_compact(cairn_buf *b);
/* Empty the buffer; frees storage above `keep` bytes of capacity. */
void buf_reset(cairn_buf *b, size_t keep);
static inline size_t buf_unread(const cairn_buf *b) { return b->len - b->pos; }

#endif
