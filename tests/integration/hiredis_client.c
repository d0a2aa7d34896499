/*
 * hiredis_client.c — a fixed conversation with a cairn node through hiredis,
 * the C client most Redis tools are built on.  Run by test_clients.py.
 *
 *   usage: hiredis_client HOST PORT
 *
 * Every reply's type and value is checked.  On success prints
 * "hiredis: N checks passed" and exits 0; on the first mismatch prints what
 * was expected and what came back, and exits 1 (2 for a usage or connection
 * problem).
 */
#include <hiredis/hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks;
static const char *step = "start";

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "hiredis: FAIL at %s: ", step);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static const char *type_name(int t)
{
    switch (t) {
    case REDIS_REPLY_STRING: return "string";
    case REDIS_REPLY_ARRAY: return "array";
    case REDIS_REPLY_INTEGER: return "integer";
    case REDIS_REPLY_NIL: return "nil";
    case REDIS_REPLY_STATUS: return "status";
    case REDIS_REPLY_ERROR: return "error";
    default: return "other";
    }
}

static void want_type(const redisReply *r, int type)
{
    if (!r) fail("no reply (connection error)");
    if (r->type != type)
        fail("expected a %s reply, got %s%s%.*s", type_name(type), type_name(r->type),
             (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) ? ": " : "",
             (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) ? (int)r->len : 0,
             (r->type == REDIS_REPLY_ERROR || r->type == REDIS_REPLY_STATUS) ? r->str : "");
    checks++;
}

static void want_str(const redisReply *r, int type, const char *s, size_t len)
{
    want_type(r, type);
    if (r->len != len || memcmp(r->str, s, len) != 0)
        fail("expected \"%.*s\" (%zu bytes), got \"%.*s\" (%zu bytes)", (int)len, s, len,
             (int)r->len, r->str, r->len);
    checks++;
}

static void want_status(const redisReply *r, const char *s) { want_str(r, REDIS_REPLY_STATUS, s, strlen(s)); }
static void want_bulk(const redisReply *r, const char *s) { want_str(r, REDIS_REPLY_STRING, s, strlen(s)); }

static void want_int(const redisReply *r, long long v)
{
    want_type(r, REDIS_REPLY_INTEGER);
    if (r->integer != v) fail("expected integer %lld, got %lld", v, r->integer);
    checks++;
}

static redisReply *cmd(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!r) fail("command failed: %s", c->errstr);
    return r;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
        return 2;
    }
    struct timeval tv = {10, 0};
    redisContext *c = redisConnectWithTimeout(argv[1], atoi(argv[2]), tv);
    if (!c || c->err) {
        fprintf(stderr, "hiredis: cannot connect to %s:%s: %s\n", argv[1], argv[2],
                c ? c->errstr : "out of memory");
        return 2;
    }
    redisSetTimeout(c, tv);
    redisReply *r;

    step = "PING";
    r = cmd(c, "PING");
    want_status(r, "PONG");
    freeReplyObject(r);

    step = "SET";
    r = cmd(c, "SET %s %s", "hr:str", "hello world");
    want_status(r, "OK");
    freeReplyObject(r);

    step = "GET";
    r = cmd(c, "GET %s", "hr:str");
    want_bulk(r, "hello world");
    freeReplyObject(r);

    step = "GET missing";
    r = cmd(c, "GET %s", "hr:missing");
    want_type(r, REDIS_REPLY_NIL);
    freeReplyObject(r);

    step = "SET binary (%b)";
    {
        const char bin[] = {'a', '\0', '\r', '\n', (char)0xff, 'z'};
        r = cmd(c, "SET %b %b", "hr:bin\0key", (size_t)10, bin, sizeof(bin));
        want_status(r, "OK");
        freeReplyObject(r);
        r = cmd(c, "GET %b", "hr:bin\0key", (size_t)10);
        want_str(r, REDIS_REPLY_STRING, bin, sizeof(bin));
        freeReplyObject(r);
    }

    step = "INCR";
    r = cmd(c, "INCR %s", "hr:counter");
    want_int(r, 1);
    freeReplyObject(r);
    r = cmd(c, "INCRBY %s %d", "hr:counter", 41);
    want_int(r, 42);
    freeReplyObject(r);

    step = "INCR on a non-integer";
    r = cmd(c, "INCR %s", "hr:str");
    want_str(r, REDIS_REPLY_ERROR, "ERR value is not an integer or out of range",
             strlen("ERR value is not an integer or out of range"));
    freeReplyObject(r);

    step = "MSET";
    r = cmd(c, "MSET %s %s %s %s %s %s", "hr:m1", "v1", "hr:m2", "v2", "hr:m3", "");
    want_status(r, "OK");
    freeReplyObject(r);

    step = "MGET";
    r = cmd(c, "MGET %s %s %s %s", "hr:m1", "hr:nope", "hr:m2", "hr:m3");
    want_type(r, REDIS_REPLY_ARRAY);
    if (r->elements != 4) fail("expected 4 elements, got %zu", r->elements);
    want_bulk(r->element[0], "v1");
    want_type(r->element[1], REDIS_REPLY_NIL);
    want_bulk(r->element[2], "v2");
    want_bulk(r->element[3], "");
    freeReplyObject(r);

    step = "HSET";
    r = cmd(c, "HSET %s %s %s %s %s", "hr:hash", "f1", "one", "f2", "two");
    want_int(r, 2);
    freeReplyObject(r);

    step = "HGETALL";
    r = cmd(c, "HGETALL %s", "hr:hash");
    want_type(r, REDIS_REPLY_ARRAY);
    if (r->elements != 4) fail("expected 4 elements, got %zu", r->elements);
    {
        int seen1 = 0, seen2 = 0;
        for (size_t i = 0; i + 1 < r->elements; i += 2) {
            want_type(r->element[i], REDIS_REPLY_STRING);
            if (strcmp(r->element[i]->str, "f1") == 0) {
                want_bulk(r->element[i + 1], "one");
                seen1++;
            } else if (strcmp(r->element[i]->str, "f2") == 0) {
                want_bulk(r->element[i + 1], "two");
                seen2++;
            } else {
                fail("unexpected field \"%s\"", r->element[i]->str);
            }
        }
        if (seen1 != 1 || seen2 != 1) fail("fields f1/f2 seen %d/%d times", seen1, seen2);
    }
    freeReplyObject(r);

    step = "WRONGTYPE";
    r = cmd(c, "GET %s", "hr:hash");
    want_type(r, REDIS_REPLY_ERROR);
    if (strncmp(r->str, "WRONGTYPE", 9) != 0) fail("expected WRONGTYPE, got %s", r->str);
    freeReplyObject(r);

    step = "DEL";
    r = cmd(c, "DEL %s %s %s %s", "hr:str", "hr:hash", "hr:m1", "hr:nope");
    want_int(r, 3);
    freeReplyObject(r);

    step = "EXISTS after DEL";
    r = cmd(c, "EXISTS %s %s", "hr:str", "hr:hash");
    want_int(r, 0);
    freeReplyObject(r);

    /* A pipelined batch: 1,000 commands appended, then 1,000 replies read in
     * order.  SET/GET/INCR interleaved so a reordering shows. */
    step = "pipeline append";
    enum { N = 1000 };
    for (int i = 0; i < N; i++) {
        int rc;
        switch (i % 4) {
        case 0: rc = redisAppendCommand(c, "SET hr:p:%d value-%d", i, i); break;
        case 1: rc = redisAppendCommand(c, "GET hr:p:%d", i - 1); break;
        case 2: rc = redisAppendCommand(c, "INCR %s", "hr:pcounter"); break;
        default: rc = redisAppendCommand(c, "GET hr:p:none:%d", i); break;
        }
        if (rc != REDIS_OK) fail("redisAppendCommand %d: %s", i, c->errstr);
    }
    step = "pipeline replies";
    long long incrs = 0;
    for (int i = 0; i < N; i++) {
        void *vr = NULL;
        if (redisGetReply(c, &vr) != REDIS_OK || !vr) fail("redisGetReply %d: %s", i, c->errstr);
        r = vr;
        char want[64];
        switch (i % 4) {
        case 0: want_status(r, "OK"); break;
        case 1:
            snprintf(want, sizeof(want), "value-%d", i - 1);
            want_bulk(r, want);
            break;
        case 2: want_int(r, ++incrs); break;
        default: want_type(r, REDIS_REPLY_NIL); break;
        }
        freeReplyObject(r);
    }

    step = "DBSIZE after pipeline";
    r = cmd(c, "DBSIZE");
    /* hr:bin\0key hr:counter hr:m2 hr:m3 hr:pcounter + 250 hr:p:* keys */
    want_int(r, 5 + N / 4);
    freeReplyObject(r);

    redisFree(c);
    printf("hiredis: %d checks passed\n", checks);
    return 0;
}
