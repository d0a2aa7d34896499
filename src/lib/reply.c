#include "lib/reply.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"


static void hdr(cairn_buf *b, char type, int64_t n)
{
    char *p = buf_reserve(b, 24);
    p[0] = type;
    size_t l = 1 + i64_to_str(p + 1, n);
    p[l] = '\r';
    p[l + 1] = '\n';
    b->len += l + 2;
}

void reply_simple(cairn_buf *b, const char *s)
{
    size_t n = strlen(s);
    char *p = buf_reserve(b, n + 3);
    p[0] = '+';
    memcpy(p + 1, s, n);
    p[n + 1] = '\r';
    p[n + 2] = '\n';
    b->len += n + 3;
}

void reply_ok(cairn_buf *b) { buf_append(b, "+OK\r\n", 5); }

void reply_error(cairn_buf *b, const char *msg)
{
    size_t n = strlen(msg);
    char *p = buf_reserve(b, n + 3);
    p[0] = '-';
    for (size_t i = 0; i < n; i++) p[i + 1] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    p[n + 1] = '\r';
    p[n + 2] = '\n';
    b->len += n + 3;
}

void reply_errorf(cairn_buf *b, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply_error(b, msg);
}

void reply_int(cairn_buf *b, int64_t v)
{
    if (v == 0) buf_append(b, ":0\r\n", 4);
    else if (v == 1) buf_append(b, ":1\r\n", 4);
    else hdr(b, ':', v);
}

void reply_bulk(cairn_buf *b, const void *s, size_t n)
{
    char *p = buf_reserve(b, n + 26);
    p[0] = '$';
    size_t l = 1 + i64_to_str(p + 1, (int64_t)n);
    p[l++] = '\r';
    p[l++] = '\n';
    memcpy(p + l, s, n);
    l += n;
    p[l++] = '\r';
    p[l++] = '\n';
    b->len += l;
}

void reply_bulk_str(cairn_buf *b, const char *s) { reply_bulk(b, s, strlen(s)); }

void reply_bulk_i64(cairn_buf *b, int64_t v)
{
    char tmp[24];
    reply_bulk(b, tmp, i64_to_str(tmp, v));
}

void reply_bulk_u64(cairn_buf *b, uint64_t v)
{
    char tmp[24];
    reply_bulk(b, tmp, u64_to_str(tmp, v));
}

void reply_null(cairn_buf *b, int proto)
{
    if (proto == 3) buf_append(b, "_\r\n", 3);
    else buf_append(b, "$-1\r\n", 5);
}

void reply_null_array(cairn_buf *b, int proto)
{
    if (proto == 3) buf_append(b, "_\r\n", 3);
    else buf_append(b, "*-1\r\n", 5);
}

void reply_array(cairn_buf *b, size_t n) { hdr(b, '*', (int64_t)n); }
void reply_map(cairn_buf *b, int proto, size_t n)
{
    if (proto == 3) hdr(b, '%', (int64_t)n);
    else hdr(b, '*', (int64_t)n * 2);
}
void reply_set(cairn_buf *b, int proto, size_t n) { hdr(b, proto == 3 ? '~' : '*', (int64_t)n); }

void reply_verbatim(cairn_buf *b, int proto, const char *s, size_t n)
{
    if (proto != 3) {
        reply_bulk(b, s, n);
        return;
    }
    hdr(b, '=', (int64_t)n + 4);
    buf_append(b, "txt:", 4);
    buf_append(b, s, n);
    buf_append(b, "\r\n", 2);
}

void reply_double(cairn_buf *b, int proto, double d)
{
    char tmp[128];
    int n;
    if (isinf(d)) n = snprintf(tmp, sizeof(tmp), "%s", d > 0 ? "inf" : "-inf");
    else n = snprintf(tmp, sizeof(tmp), "%.17g", d);
    if (proto == 3) {
        buf_append(b, ",", 1);
        buf_append(b, tmp, (size_t)n);
        buf_append(b, "\r\n", 2);
    } else {
        reply_bulk(b, tmp, (size_t)n);
    }
}

void reply_bool(cairn_buf *b, int proto, int v)
{
    if (proto == 3) buf_append(b, v ? "#t\r\n" : "#f\r\n", 4);
    else reply_int(b, v ? 1 : 0);
}
