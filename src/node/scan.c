#include "node/scan.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/reply.h"
#include "node/cmd.h"

bool scan_parse_cursor(client_t *c, size_t at, uint64_t *cursor)
{
    const resp_arg *a = &c->argv[at];
    char buf[32];
    /* strtoul's rules, as Redis: "" is 0, "-1" wraps, "+5" is 5. */
    if (a->len >= sizeof(buf) || (a->len && isspace((unsigned char)a->p[0]))) goto bad;
    memcpy(buf, a->p, a->len);
    buf[a->len] = '\0';
    char *end;
    errno = 0;
    unsigned long long v = strtoull(buf, &end, 10);
    if (*end != '\0' || errno == ERANGE) goto bad;
    *cursor = v;
    return true;
bad:
    reply_error(&c->out, "ERR invalid cursor");
    return false;
}

bool scan_parse(client_t *c, size_t at, bool allow_type, scan_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->count = 10;
    if (!scan_parse_cursor(c, at, &o->cursor)) return false;
    for (size_t i = at + 1; i < c->argc;) {
        size_t left = c->argc - i;
        if (arg_eq(&c->argv[i], "count") && left >= 2) {
            if (!arg_i64(c, &c->argv[i + 1], &o->count, NULL)) return false;
            if (o->count < 1) {
                reply_error(&c->out, ERR_SYNTAX);
                return false;
            }
            i += 2;
        } else if (arg_eq(&c->argv[i], "match") && left >= 2) {
            const resp_arg *p = &c->argv[i + 1];
            o->pattern = (p->len == 1 && p->p[0] == '*') ? NULL : p;
            i += 2;
        } else if (arg_eq(&c->argv[i], "type") && allow_type && left >= 2) {
            o->type = &c->argv[i + 1];
            i += 2;
        } else {
            reply_error(&c->out, ERR_SYNTAX);
            return false;
        }
    }
    return true;
}
