/*
 * cmd.c — command lookup and dispatch, and the COMMAND command.
 *
 * client_exec() applies, in Redis 7's order: unknown command, arity,
 * authentication, no-multi, the replica gate, maxmemory (for commands that
 * may grow memory, and for anything queued inside MULTI); then runs the
 * handler, or queues the command when the client is in MULTI (cmd_multi.c).
 * A refusal inside MULTI dooms the transaction (EXECABORT).  Handlers reply into c->out; client.c holds the reply until
 * the writes it could observe are committed.
 */
#include "node/cmd.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/reply.h"
#include "lib/util.h"
#include "node/db.h"
#include "node/replica.h"

#define W CMD_WRITE
#define R CMD_READONLY
#define M CMD_DENYOOM
#define A CMD_ADMIN
#define F CMD_FAST
#define N CMD_NOAUTH
#define L (CMD_LOADING | CMD_STALE)

static const cmd_def table[] = {
#define CMD_ROW(name, fn, arity, flags, first, last, step, group, hint) \
    {#name, fn, arity, flags, first, last, step, #group, hint},
    CMD_TABLE(CMD_ROW)
#undef CMD_ROW
};
#define NCMDS (sizeof(table) / sizeof(table[0]))

const cmd_def *cmd_table(size_t *n)
{
    *n = NCMDS;
    return table;
}

/* Lookup by an open-addressing hash of the lower-cased name, built once:
 * one hash and one compare per request, where a binary search over the
 * table cost seven string compares. */
#define LOOKUP_SLOTS 512 /* a power of two, well over twice NCMDS */

static uint16_t slot_of[LOOKUP_SLOTS]; /* table index + 1; 0 = empty */
static uint8_t name_len[NCMDS];
static pthread_once_t lookup_once = PTHREAD_ONCE_INIT;

static uint32_t name_hash(const char *s, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static void lookup_build(void)
{
    _Static_assert(NCMDS * 2 < LOOKUP_SLOTS, "LOOKUP_SLOTS too small");
    for (size_t i = 0; i < NCMDS; i++) {
        size_t len = strlen(table[i].name);
        name_len[i] = (uint8_t)len;
        uint32_t k = name_hash(table[i].name, len) & (LOOKUP_SLOTS - 1);
        while (slot_of[k]) k = (k + 1) & (LOOKUP_SLOTS - 1);
        slot_of[k] = (uint16_t)(i + 1);
    }
}

const cmd_def *cmd_lookup(const char *name, size_t len)
{
    if (len == 0 || len > 32) return NULL;
    pthread_once(&lookup_once, lookup_build);
    char low[32];
    for (size_t i = 0; i < len; i++) low[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
    for (uint32_t k = name_hash(low, len) & (LOOKUP_SLOTS - 1); slot_of[k]; k = (k + 1) & (LOOKUP_SLOTS - 1)) {
        size_t i = slot_of[k] - 1u;
        if (name_len[i] == len && memcmp(table[i].name, low, len) == 0) return &table[i];
    }
    return NULL;
}

bool arg_eq(const resp_arg *a, const char *lit) { return str_eq_nocase(a->p, a->len, lit); }

bool arg_i64(client_t *c, const resp_arg *a, int64_t *out, const char *err)
{
    if (str_to_i64(a->p, a->len, out)) return true;
    reply_error(&c->out, err ? err : ERR_NOTINT);
    return false;
}

void reply_unknown_sub(client_t *c, const char *container)
{
    reply_errorf(&c->out, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                 (int)(c->argv[1].len > 128 ? 128 : c->argv[1].len), c->argv[1].p, container);
}

void reply_arity(client_t *c, const char *name)
{
    reply_errorf(&c->out, "ERR wrong number of arguments for '%s' command", name);
}

/* "unknown command 'x', with args beginning with: 'a' 'b' " — Redis caps
 * the argument excerpt at about 128 bytes. */
static void reply_unknown(client_t *c)
{
    char args[512];
    size_t al = 0;
    args[0] = '\0';
    for (size_t i = 1; i < c->argc && al < 128; i++) {
        int room = 128 - (int)al;
        int w = snprintf(args + al, sizeof(args) - al, "'%.*s' ",
                         (int)(c->argv[i].len < (size_t)room ? c->argv[i].len : (size_t)room),
                         c->argv[i].p);
        if (w < 0) break;
        al += (size_t)w;
        if (al >= sizeof(args)) al = sizeof(args) - 1;
    }
    int nl = (int)(c->argv[0].len > 128 ? 128 : c->argv[0].len);
    reply_errorf(&c->out, "ERR unknown command '%.*s', with args beginning with: %s", nl,
                 c->argv[0].p, args);
}

/* A command refused before it runs: like Redis's rejectCommand, the error
 * dooms an open transaction, and a refused EXEC discards it. */
static void reject(client_t *c, const cmd_def *cmd, const char *err)
{
    if (cmd && cmd->fn == cmd_exec) {
        multi_exec_abort(c, err, strlen(err));
        return;
    }
    reply_error(&c->out, err);
    multi_flag(c);
}

void client_exec(client_t *c)
{
    node_t *n = c->node;
    const cmd_def *cmd = cmd_lookup(c->argv[0].p, c->argv[0].len);
    /* (c->last_ms, the idle clock, is set once per read in client.c) */
    if (!cmd) {
        reply_unknown(c);
        multi_flag(c);
        return;
    }
    c->last_cmd = cmd->name;
    if ((cmd->arity > 0 && (int64_t)c->argc != cmd->arity) ||
        (int64_t)c->argc < -(int64_t)cmd->arity) {
        char err[96];
        snprintf(err, sizeof(err), "ERR wrong number of arguments for '%s' command", cmd->name);
        reject(c, cmd, err);
        return;
    }
    if (!(c->flags & CLIENT_AUTHED) && !(cmd->flags & CMD_NOAUTH)) {
        reject(c, cmd, "NOAUTH Authentication required.");
        return;
    }
    bool in_multi = c->flags & CLIENT_MULTI;
    if (in_multi && (cmd->flags & CMD_NOMULTI)) {
        reject(c, cmd, "ERR Command not allowed inside a transaction");
        return;
    }
    /* (EXEC passes: cmd_exec gates it with the flags of what it holds.) */
    if (!replica_admit(c, cmd->flags)) {
        multi_flag(c);
        return;
    }
    /* Inside MULTI every command but EXEC/DISCARD/QUIT may grow memory
     * (it is queued): Redis refuses them all over maxmemory. */
    bool oom_gate = (cmd->flags & CMD_DENYOOM) ||
                    (in_multi && cmd->fn != cmd_exec && cmd->fn != cmd_discard && cmd->fn != cmd_quit);
    if (oom_gate && !n->loading && db_over_maxmemory(n)) {
        reject(c, cmd, "OOM command not allowed when used memory > 'maxmemory'.");
        return;
    }
    if (in_multi && !multi_control(cmd)) {
        multi_queue(c, cmd);
        return;
    }
    n->stats.commands++;
    cmd->fn(c);
}

/* ---- COMMAND ---- */

static void flag_names(const cmd_def *d, const char **names, size_t *k)
{
    static const struct {
        unsigned f;
        const char *name;
    } map[] = {{CMD_WRITE, "write"},     {CMD_READONLY, "readonly"}, {CMD_DENYOOM, "denyoom"},
               {CMD_ADMIN, "admin"},     {CMD_NOAUTH, "no_auth"},    {CMD_LOADING, "loading"},
               {CMD_STALE, "stale"},     {CMD_FAST, "fast"},         {CMD_RANDOM, "random"},
               {CMD_NOMULTI, "no_multi"}};
    *k = 0;
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (d->flags & map[i].f) names[(*k)++] = map[i].name;
}

static void reply_cmd_info(client_t *c, const cmd_def *d)
{
    const char *flags[16];
    size_t nf;
    flag_names(d, flags, &nf);
    reply_array(&c->out, 10);
    reply_bulk_str(&c->out, d->name);
    reply_int(&c->out, d->arity);
    reply_set(&c->out, c->proto, nf);
    for (size_t i = 0; i < nf; i++) reply_simple(&c->out, flags[i]);
    reply_int(&c->out, d->first);
    reply_int(&c->out, d->last);
    reply_int(&c->out, d->step);
    reply_set(&c->out, c->proto, 0); /* ACL categories */
    reply_set(&c->out, c->proto, 0); /* tips */
    reply_array(&c->out, 0);         /* key specs */
    reply_array(&c->out, 0);         /* subcommands */
}

/* The hint is split at spaces outside brackets, one "argument" per piece,
 * which is how redis-cli renders its inline hints. */
static void reply_cmd_docs(client_t *c, const cmd_def *d)
{
    const char *pieces[32];
    size_t lens[32], np = 0;
    const char *h = d->hint;
    while (*h && np < 32) {
        while (*h == ' ') h++;
        if (!*h) break;
        const char *s = h;
        int depth = 0;
        while (*h && (depth > 0 || *h != ' ')) {
            if (*h == '[') depth++;
            else if (*h == ']') depth--;
            h++;
        }
        pieces[np] = s;
        lens[np++] = (size_t)(h - s);
    }
    reply_bulk_str(&c->out, d->name);
    reply_map(&c->out, c->proto, np ? 4 : 3);
    reply_bulk_str(&c->out, "summary");
    reply_bulk_str(&c->out, d->name);
    reply_bulk_str(&c->out, "since");
    reply_bulk_str(&c->out, "1.0.0");
    reply_bulk_str(&c->out, "group");
    reply_bulk_str(&c->out, d->group);
    if (np) {
        reply_bulk_str(&c->out, "arguments");
        reply_array(&c->out, np);
        for (size_t i = 0; i < np; i++) {
            reply_map(&c->out, c->proto, 2);
            reply_bulk_str(&c->out, "name");
            reply_bulk(&c->out, pieces[i], lens[i]);
            reply_bulk_str(&c->out, "type");
            reply_bulk_str(&c->out, "string");
        }
    }
}

void cmd_command(client_t *c)
{
    if (c->argc == 1) {
        reply_array(&c->out, NCMDS);
        for (size_t i = 0; i < NCMDS; i++) reply_cmd_info(c, &table[i]);
        return;
    }
    const resp_arg *sub = &c->argv[1];
    if ((arg_eq(sub, "count") && c->argc != 2) || (arg_eq(sub, "getkeys") && c->argc < 4)) {
        char err[96];
        snprintf(err, sizeof(err), "ERR wrong number of arguments for 'command|%s' command",
                 arg_eq(sub, "count") ? "count" : "getkeys");
        reply_error(&c->out, err);
    } else if (arg_eq(sub, "count")) {
        reply_int(&c->out, (int64_t)NCMDS);
    } else if (arg_eq(sub, "list") && c->argc == 2) {
        reply_array(&c->out, NCMDS);
        for (size_t i = 0; i < NCMDS; i++) reply_bulk_str(&c->out, table[i].name);
    } else if (arg_eq(sub, "info")) {
        if (c->argc == 2) {
            reply_array(&c->out, NCMDS);
            for (size_t i = 0; i < NCMDS; i++) reply_cmd_info(c, &table[i]);
            return;
        }
        reply_array(&c->out, c->argc - 2);
        for (size_t i = 2; i < c->argc; i++) {
            const cmd_def *d = cmd_lookup(c->argv[i].p, c->argv[i].len);
            if (d) reply_cmd_info(c, d);
            else reply_null(&c->out, c->proto); /* Redis: a null, not a null array */
        }
    } else if (arg_eq(sub, "docs")) {
        if (c->argc == 2) {
            reply_map(&c->out, c->proto, NCMDS);
            for (size_t i = 0; i < NCMDS; i++) reply_cmd_docs(c, &table[i]);
            return;
        }
        size_t found = 0;
        for (size_t i = 2; i < c->argc; i++)
            if (cmd_lookup(c->argv[i].p, c->argv[i].len)) found++;
        reply_map(&c->out, c->proto, found);
        for (size_t i = 2; i < c->argc; i++) {
            const cmd_def *d = cmd_lookup(c->argv[i].p, c->argv[i].len);
            if (d) reply_cmd_docs(c, d);
        }
    } else if (arg_eq(sub, "getkeys") && c->argc >= 3) {
        const cmd_def *d = cmd_lookup(c->argv[2].p, c->argv[2].len);
        if (!d) {
            reply_error(&c->out, "ERR Invalid command specified");
            return;
        }
        size_t argc = c->argc - 2;
        if ((d->arity > 0 && (int64_t)argc != d->arity) || (int64_t)argc < -(int64_t)d->arity) {
            reply_error(&c->out, "ERR Invalid number of arguments specified for command");
            return;
        }
        if (d->first == 0) {
            reply_error(&c->out, "ERR The command has no key arguments");
            return;
        }
        size_t last = d->last < 0 ? argc + (size_t)(long)d->last : (size_t)d->last;
        size_t nk = 0;
        for (size_t i = (size_t)d->first; i <= last && i < argc; i += (size_t)d->step) nk++;
        reply_array(&c->out, nk);
        for (size_t i = (size_t)d->first; i <= last && i < argc; i += (size_t)d->step)
            reply_bulk(&c->out, c->argv[i + 2].p, c->argv[i + 2].len);
    } else if (arg_eq(sub, "help")) {
        static const char *help[] = {
            "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "(no subcommand)", "    Return details about all commands.", "COUNT",
            "    Return the total number of commands in this server.", "LIST",
            "    Return a list of all commands in this server.", "INFO [<command-name> ...]",
            "    Return details about multiple commands.", "DOCS [<command-name> ...]",
            "    Return documentation details about multiple commands.",
            "GETKEYS <full-command>", "    Return the keys from a full command.", "HELP",
            "    Print this help."};
        reply_array(&c->out, sizeof(help) / sizeof(help[0]));
        for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) reply_simple(&c->out, help[i]);
    } else {
        reply_unknown_sub(c, "COMMAND");
    }
}
