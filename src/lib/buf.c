#include "lib/buf.h"

#include <string.h>

#include "lib/mem.h"
#include "lib/util.h"

void buf_init(cairn_buf *b) { memset(b, 0, sizeof(*b)); }

void buf_close(cairn_buf *b)
{
    cairn_free(b->data);
    memset(b, 0, sizeof(*b));
}

char *buf_reserve(cairn_buf *b, size_t n)
{
    if (b->cap - b->len < n) {
        if (b->pos > 0 && b->pos >= b->len / 2) buf_compact(b);
        if (b->cap - b->len < n) {
            /* Double for amortised appends, but size a big jump exactly
             * (a client announcing a 512 MB bulk gets 512 MB, not 1 GB). */
            size_t cap = b->cap ? b->cap * 2 : 64;
            if (cap < b->len + n) cap = b->len + n;
            b->data = cairn_realloc(b->data, cap);
            b->cap = cap;
        }
    }
    return b->data + b->len;
}

void buf_append(cairn_buf *b, const void *p, size_t n)
{
    if (n == 0) return;
    memcpy(buf_reserve(b, n), p, n);
    b->len += n;
}

void buf_append_str(cairn_buf *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_append_u64(cairn_buf *b, uint64_t v)
{
    char *p = buf_reserve(b, 21);
    b->len += u64_to_str(p, v);
}

void buf_append_i64(cairn_buf *b, int64_t v)
{
    char *p = buf_reserve(b, 21);
    b->len += i64_to_str(p, v);
}

void buf_compact(cairn_buf *b)
{
    if (b->pos == 0) return;
    memmove(b->data, b->data + b->pos, b->len - b->pos);
    b->len -= b->pos;
    b->pos = 0;
}

void buf_reset(cairn_buf *b, size_t keep)
{
    b->len = b->pos = 0;
    if (b->cap > keep) {
        cairn_free(b->data);
        b->data = NULL;
        b->cap = 0;
    }
}
