/*
 * cmd_server.c — connection and server commands: PING ECHO SELECT TIME
 * QUIT AUTH HELLO CLIENT CONFIG INFO SAVE BGSAVE LASTSAVE SHUTDOWN.
 */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/mem.h"
#include "lib/reply.h"
#include "lib/util.h"
#include "node/cmd.h"
#include "node/db.h"
#include "node/persist.h"
#include "node/replica.h"

#define CAIRN_VERSION "0.1.0"
#define REDIS_COMPAT_VERSION "7.0.15"

void cmd_ping(client_t *c)
{
    if (c->argc > 2) reply_arity(c, "ping");
    else if (c->argc == 2) reply_bulk(&c->out, c->argv[1].p, c->argv[1].len);
    else reply_simple(&c->out, "PONG");
}

void cmd_echo(client_t *c) { reply_bulk(&c->out, c->argv[1].p, c->argv[1].len); }

void cmd_select(client_t *c)
{
    int64_t db;
    if (!arg_i64(c, &c->argv[1], &db, "ERR value is not an integer or out of range")) return;
    if (db != 0) reply_error(&c->out, "ERR DB index is out of range");
    else reply_ok(&c->out);
}

void cmd_time(client_t *c)
{
    int64_t us = clock_us();
    reply_array(&c->out, 2);
    reply_bulk_i64(&c->out, us / 1000000);
    reply_bulk_i64(&c->out, us % 1000000);
}

void cmd_quit(client_t *c)
{
    reply_ok(&c->out);
    c->flags |= CLIENT_CLOSE_AFTER_REPLY;
}

/* Compare in time that depends on the secret's length only, not on where
 * a guess first differs. */
static bool secret_eq(const char *secret, const char *guess, size_t glen)
{
    size_t slen = strlen(secret);
    unsigned char diff = (unsigned char)(slen != glen);
    for (size_t i = 0; i < slen; i++) diff |= (unsigned char)(secret[i] ^ (i < glen ? guess[i] : 0));
    return diff == 0;
}

/* Check a username/password pair against requirepass; replies on failure.
 * The user is "default", case-sensitive, as Redis's ACL names are. */
static bool check_auth(client_t *c, const resp_arg *user, const resp_arg *pass)
{
    const char *rp = c->node->cfg.requirepass;
    bool ok = user->len == 7 && memcmp(user->p, "default", 7) == 0 &&
              (rp && rp[0] ? secret_eq(rp, pass->p, pass->len) : true);
    if (!ok) {
        reply_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return false;
    }
    c->flags |= CLIENT_AUTHED;
    return true;
}

void cmd_auth(client_t *c)
{
    if (c->argc > 3) {
        reply_error(&c->out, ERR_SYNTAX);
        return;
    }
    const char *rp = c->node->cfg.requirepass;
    if (c->argc == 2 && !(rp && rp[0])) {
        reply_error(&c->out, "ERR AUTH <password> called without any password configured for the "
                             "default user. Are you sure your configuration is correct?");
        return;
    }
    resp_arg def = {"default", 7};
    if (check_auth(c, c->argc == 2 ? &def : &c->argv[1], &c->argv[c->argc - 1])) reply_ok(&c->out);
}

static bool valid_name(const resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->p[i] < '!' || a->p[i] > '~') return false;
    return true;
}

void cmd_hello(client_t *c)
{
    int64_t ver = 0;
    size_t j = 1;
    if (c->argc >= 2) {
        if (!arg_i64(c, &c->argv[1], &ver, "ERR Protocol version is not an integer or out of range"))
            return;
        j = 2;
        if (ver < 2 || ver > 3) {
            reply_error(&c->out, "NOPROTO unsupported protocol version");
            return;
        }
    }
    /* Options apply in order, as in Redis 7.0: AUTH takes effect at once
     * (even if a later option fails), SETNAME is checked and set where it
     * stands; only then must the client be authenticated. */
    for (; j < c->argc; j++) {
        size_t more = c->argc - 1 - j;
        if (arg_eq(&c->argv[j], "auth") && more >= 2) {
            if (!check_auth(c, &c->argv[j + 1], &c->argv[j + 2])) return;
            j += 2;
        } else if (arg_eq(&c->argv[j], "setname") && more) {
            const resp_arg *name = &c->argv[++j];
            if (!valid_name(name)) {
                reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
                return;
            }
            cairn_free(c->name);
            c->name = name->len ? cairn_strndup(name->p, name->len) : NULL;
        } else {
            reply_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'", (int)c->argv[j].len,
                         c->argv[j].p);
            return;
        }
    }
    if (!(c->flags & CLIENT_AUTHED)) {
        reply_error(&c->out, "NOAUTH HELLO must be called with the client already authenticated, "
                             "otherwise the HELLO AUTH <user> <pass> option can be used to "
                             "authenticate the client and select the RESP protocol version at the "
                             "same time");
        return;
    }
    if (ver) c->proto = (int)ver;
    reply_map(&c->out, c->proto, 7);
    reply_bulk_str(&c->out, "server");
    reply_bulk_str(&c->out, "redis");
    reply_bulk_str(&c->out, "version");
    reply_bulk_str(&c->out, REDIS_COMPAT_VERSION);
    reply_bulk_str(&c->out, "proto");
    reply_int(&c->out, c->proto);
    reply_bulk_str(&c->out, "id");
    reply_int(&c->out, (int64_t)c->id);
    reply_bulk_str(&c->out, "mode");
    reply_bulk_str(&c->out, "standalone");
    reply_bulk_str(&c->out, "role");
    reply_bulk_str(&c->out, "master");
    reply_bulk_str(&c->out, "modules");
    reply_array(&c->out, 0);
}

/* ---- CLIENT ---- */

static client_t *client_by_id(node_t *n, uint64_t id)
{
    for (client_t *x = n->clients; x; x = x->next)
        if (x->id == id) return x;
    return NULL;
}

static void client_kill(client_t *c)
{
    node_t *n = c->node;
    if (c->argc == 3) { /* old form: CLIENT KILL addr:port */
        for (client_t *x = n->clients; x; x = x->next) {
            if (strlen(x->addr) == c->argv[2].len && memcmp(x->addr, c->argv[2].p, c->argv[2].len) == 0) {
                if (x == c) c->flags |= CLIENT_CLOSE_AFTER_REPLY;
                else client_close(x);
                reply_ok(&c->out);
                return;
            }
        }
        reply_error(&c->out, "ERR No such client");
        return;
    }
    if (c->argc % 2 != 0) {
        reply_error(&c->out, ERR_SYNTAX);
        return;
    }
    int64_t id = -1;
    const resp_arg *addr = NULL, *laddr = NULL;
    bool skipme = true, none = false;
    for (size_t i = 2; i + 1 < c->argc; i += 2) {
        const resp_arg *k = &c->argv[i], *v = &c->argv[i + 1];
        if (arg_eq(k, "id")) {
            if (!str_to_i64(v->p, v->len, &id) || id <= 0) {
                reply_error(&c->out, "ERR client-id should be greater than 0");
                return;
            }
        } else if (arg_eq(k, "addr")) {
            addr = v;
        } else if (arg_eq(k, "laddr")) {
            laddr = v;
        } else if (arg_eq(k, "skipme")) {
            if (arg_eq(v, "yes")) skipme = true;
            else if (arg_eq(v, "no")) skipme = false;
            else {
                reply_error(&c->out, ERR_SYNTAX);
                return;
            }
        } else if (arg_eq(k, "type")) {
            /* every client is a normal one: the other types match none */
            if (arg_eq(v, "master") || arg_eq(v, "replica") || arg_eq(v, "slave") || arg_eq(v, "pubsub")) {
                none = true;
            } else if (!arg_eq(v, "normal")) {
                reply_errorf(&c->out, "ERR Unknown client type '%.*s'", (int)v->len, v->p);
                return;
            }
        } else if (arg_eq(k, "user")) {
            if (!(v->len == 7 && memcmp(v->p, "default", 7) == 0)) {
                reply_errorf(&c->out, "ERR No such user '%.*s'", (int)v->len, v->p);
                return;
            }
        } else {
            reply_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    int64_t killed = 0;
    for (client_t *x = none ? NULL : n->clients, *next; x; x = next) {
        next = x->next;
        if (id > 0 && x->id != (uint64_t)id) continue;
        if (addr && !(strlen(x->addr) == addr->len && memcmp(x->addr, addr->p, addr->len) == 0)) continue;
        if (laddr && !(strlen(x->laddr) == laddr->len && memcmp(x->laddr, laddr->p, laddr->len) == 0)) continue;
        if (x == c && skipme) continue;
        if (x == c) c->flags |= CLIENT_CLOSE_AFTER_REPLY;
        else client_close(x);
        killed++;
    }
    reply_int(&c->out, killed);
}

void cmd_client(client_t *c)
{
    const resp_arg *sub = &c->argv[1];
    if (arg_eq(sub, "id") && c->argc == 2) {
        reply_int(&c->out, (int64_t)c->id);
    } else if (arg_eq(sub, "getname") && c->argc == 2) {
        if (c->name) reply_bulk_str(&c->out, c->name);
        else reply_null(&c->out, c->proto);
    } else if (arg_eq(sub, "setname") && c->argc == 3) {
        if (!valid_name(&c->argv[2])) {
            reply_error(&c->out, "ERR Client names cannot contain spaces, newlines or special characters.");
            return;
        }
        cairn_free(c->name);
        c->name = c->argv[2].len ? cairn_strndup(c->argv[2].p, c->argv[2].len) : NULL;
        reply_ok(&c->out);
    } else if (arg_eq(sub, "setinfo") && c->argc == 4) {
        const resp_arg *attr = &c->argv[2], *val = &c->argv[3];
        char **slot = arg_eq(attr, "lib-name") ? &c->lib_name : arg_eq(attr, "lib-ver") ? &c->lib_ver : NULL;
        if (!slot) {
            reply_errorf(&c->out, "ERR Unrecognized option '%.*s'", (int)attr->len, attr->p);
            return;
        }
        if (!valid_name(val)) {
            reply_errorf(&c->out, "ERR %.*s cannot contain spaces, newlines or special characters.",
                         (int)attr->len, attr->p);
            return;
        }
        cairn_free(*slot);
        *slot = val->len ? cairn_strndup(val->p, val->len) : NULL;
        reply_ok(&c->out);
    } else if (arg_eq(sub, "info") && c->argc == 2) {
        cairn_buf b;
        buf_init(&b);
        client_info_line(c, &b);
        reply_verbatim(&c->out, c->proto, b.data, b.len);
        buf_close(&b);
    } else if (arg_eq(sub, "list")) {
        cairn_buf b;
        buf_init(&b);
        if (c->argc >= 4 && arg_eq(&c->argv[2], "id")) {
            for (size_t i = 3; i < c->argc; i++) {
                int64_t id;
                if (!str_to_i64(c->argv[i].p, c->argv[i].len, &id) || id <= 0) {
                    reply_error(&c->out, "ERR Invalid client ID");
                    buf_close(&b);
                    return;
                }
                client_t *x = client_by_id(c->node, (uint64_t)id);
                if (x) client_info_line(x, &b);
            }
        } else if (c->argc == 4 && arg_eq(&c->argv[2], "type")) {
            if (arg_eq(&c->argv[3], "normal"))
                for (client_t *x = c->node->clients; x; x = x->next) client_info_line(x, &b);
            else if (!arg_eq(&c->argv[3], "master") && !arg_eq(&c->argv[3], "replica") &&
                     !arg_eq(&c->argv[3], "slave") && !arg_eq(&c->argv[3], "pubsub")) {
                reply_errorf(&c->out, "ERR Unknown client type '%.*s'", (int)c->argv[3].len, c->argv[3].p);
                buf_close(&b);
                return;
            }
        } else if (c->argc == 2) {
            for (client_t *x = c->node->clients; x; x = x->next) client_info_line(x, &b);
        } else {
            reply_error(&c->out, ERR_SYNTAX);
            buf_close(&b);
            return;
        }
        reply_verbatim(&c->out, c->proto, b.data, b.len);
        buf_close(&b);
    } else if (arg_eq(sub, "kill") && c->argc >= 3) {
        client_kill(c);
    } else if (arg_eq(sub, "help") && c->argc == 2) {
        static const char *help[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME", "    Return the name of the current connection.",
            "ID", "    Return the ID of the current connection.",
            "INFO", "    Return information about the current client connection.",
            "KILL <ip:port>", "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
            "LIST [TYPE normal] [ID <id> [<id> ...]]", "    Return information about client connections.",
            "SETINFO <option> <value>", "    Set client meta attr. Options are: LIB-NAME, LIB-VER.",
            "SETNAME <name>", "    Assign the name <name> to the current connection.",
            "HELP", "    Print this help."};
        reply_array(&c->out, sizeof(help) / sizeof(help[0]));
        for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) reply_simple(&c->out, help[i]);
    } else if (arg_eq(sub, "id") || arg_eq(sub, "getname") || arg_eq(sub, "setname") ||
               arg_eq(sub, "setinfo") || arg_eq(sub, "info") || arg_eq(sub, "kill") ||
               arg_eq(sub, "help")) {
        char name[64];
        snprintf(name, sizeof(name), "client|%.*s", (int)sub->len, sub->p);
        for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        reply_arity(c, name);
    } else {
        reply_unknown_sub(c, "CLIENT");
    }
}

/* ---- CONFIG ---- */

/* Settings Redis tools ask for that have a fixed meaning here. */
static const struct {
    const char *name, *value;
} compat_settings[] = {{"save", ""}, {"appendonly", "yes"}, {"databases", "1"}};

struct cfg_get_ctx {
    client_t *c;
    cairn_buf *b;
    size_t n;
    const cfg_def **seen;
    size_t nseen;
};

static void cfg_get_cb(void *arg, const cfg_def *d)
{
    struct cfg_get_ctx *x = arg;
    for (size_t i = 0; i < x->nseen; i++)
        if (x->seen[i] == d) return;
    x->seen = cairn_realloc(x->seen, (x->nseen + 1) * sizeof(*x->seen));
    x->seen[x->nseen++] = d;
    char val[4096];
    cfg_get(node_config_table, &x->c->node->cfg, d, val, sizeof(val));
    reply_bulk_str(x->b, cfg_name(d));
    reply_bulk_str(x->b, val);
    x->n++;
}

static void apply_runtime(node_t *n, const char *name)
{
    if (strcmp(name, "loglevel") == 0) log_set_level((enum log_level)n->cfg.loglevel);
    else if (strcmp(name, "hz") == 0)
        uv_timer_set_repeat(&n->cron, (uint64_t)(1000 / n->cfg.hz));
    else if (strcmp(name, "logfile") == 0 && n->cfg.logfile[0]) log_set_file(n->cfg.logfile);
}

void cmd_config(client_t *c)
{
    node_t *n = c->node;
    const resp_arg *sub = &c->argv[1];
    if (arg_eq(sub, "get") && c->argc >= 3) {
        cairn_buf b;
        buf_init(&b);
        struct cfg_get_ctx x = {c, &b, 0, NULL, 0};
        for (size_t i = 2; i < c->argc; i++) {
            char pat[256];
            snprintf(pat, sizeof(pat), "%.*s", (int)c->argv[i].len, c->argv[i].p);
            if (!strpbrk(pat, "[*?")) {
                /* An exact name is echoed as given (case, alias), as Redis
                 * does; a glob reports canonical names. */
                const cfg_def *d = cfg_lookup(node_config_table, pat);
                bool dup = false;
                for (size_t k = 0; d && k < x.nseen; k++) dup |= x.seen[k] == d;
                if (d && !dup) {
                    char val[4096];
                    x.seen = cairn_realloc(x.seen, (x.nseen + 1) * sizeof(*x.seen));
                    x.seen[x.nseen++] = d;
                    cfg_get(node_config_table, &n->cfg, d, val, sizeof(val));
                    reply_bulk_str(&b, pat);
                    reply_bulk_str(&b, val);
                    x.n++;
                }
            } else {
                cfg_match(node_config_table, pat, cfg_get_cb, &x);
            }
            for (size_t k = 0; k < sizeof(compat_settings) / sizeof(compat_settings[0]); k++) {
                const char *nm = compat_settings[k].name;
                if (glob_match(pat, strlen(pat), nm, strlen(nm), true)) {
                    reply_bulk_str(&b, nm);
                    reply_bulk_str(&b, compat_settings[k].value);
                    x.n++;
                }
            }
        }
        reply_map(&c->out, c->proto, x.n);
        buf_append(&c->out, b.data, b.len);
        buf_close(&b);
        cairn_free(x.seen);
    } else if (arg_eq(sub, "set") && c->argc >= 4 && c->argc % 2 == 0) {
        char err[512];
        for (size_t i = 2; i < c->argc; i += 2) {
            char name[128], val[4096];
            snprintf(name, sizeof(name), "%.*s", (int)c->argv[i].len, c->argv[i].p);
            snprintf(val, sizeof(val), "%.*s", (int)c->argv[i + 1].len, c->argv[i + 1].p);
            if (!cfg_lookup(node_config_table, name)) {
                reply_errorf(&c->out, "ERR Unknown option or number of arguments for CONFIG SET - '%s'", name);
                return;
            }
            if (cfg_set(node_config_table, &n->cfg, name, val, true, err, sizeof(err)) < 0) {
                reply_errorf(&c->out, "ERR CONFIG SET failed (possibly related to argument '%s') - %s", name, err);
                return;
            }
            apply_runtime(n, cfg_name(cfg_lookup(node_config_table, name)));
        }
        reply_ok(&c->out);
    } else if (arg_eq(sub, "resetstat") && c->argc == 2) {
        memset(&n->stats, 0, sizeof(n->stats));
        reply_ok(&c->out);
    } else if (arg_eq(sub, "rewrite") && c->argc == 2) {
        reply_error(&c->out, "ERR CONFIG REWRITE is not supported: edit the config file");
    } else if (arg_eq(sub, "help") && c->argc == 2) {
        static const char *help[] = {
            "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GET <pattern>", "    Return parameters matching the glob-like <pattern> and their values.",
            "SET <directive> <value>", "    Set the configuration <directive> to <value>.",
            "RESETSTAT", "    Reset statistics reported by the INFO command.",
            "HELP", "    Print this help."};
        reply_array(&c->out, sizeof(help) / sizeof(help[0]));
        for (size_t i = 0; i < sizeof(help) / sizeof(help[0]); i++) reply_simple(&c->out, help[i]);
    } else if (arg_eq(sub, "get") || arg_eq(sub, "set") || arg_eq(sub, "resetstat") ||
               arg_eq(sub, "rewrite") || arg_eq(sub, "help")) {
        char name[64];
        snprintf(name, sizeof(name), "config|%.*s", (int)sub->len, sub->p);
        for (char *p = name; *p; p++) *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
        reply_arity(c, name);
    } else {
        reply_unknown_sub(c, "CONFIG");
    }
}

/* ---- INFO ---- */

static void human_bytes(char *out, size_t len, double b)
{
    const char *u[] = {"B", "K", "M", "G", "T"};
    int i = 0;
    while (b >= 1024 && i < 4) {
        b /= 1024;
        i++;
    }
    snprintf(out, len, i ? "%.2f%s" : "%.0f%s", b, u[i]);
}

static size_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%lu %lu", &size, &rss) != 2) rss = 0;
        fclose(f);
    }
    return (size_t)rss * (size_t)sysconf(_SC_PAGESIZE);
}

static bool want(const client_t *c, const char *section, bool in_default)
{
    if (c->argc == 1) return in_default;
    for (size_t i = 1; i < c->argc; i++) {
        if (arg_eq(&c->argv[i], section) || arg_eq(&c->argv[i], "all") ||
            arg_eq(&c->argv[i], "everything"))
            return true;
        if (arg_eq(&c->argv[i], "default") && in_default) return true;
    }
    return false;
}

#define P(...) \
    do { \
        char _l[512]; \
        int _n = snprintf(_l, sizeof(_l), __VA_ARGS__); \
        buf_append(&b, _l, (size_t)(_n < (int)sizeof(_l) ? _n : (int)sizeof(_l) - 1)); \
    } while (0)

void cmd_info(client_t *c)
{
    node_t *n = c->node;
    cairn_buf b;
    buf_init(&b);
    int64_t now = clock_ms();
    if (want(c, "server", true)) {
        struct utsname u;
        uname(&u);
        P("# Server\r\nredis_version:%s\r\ncairn_version:%s\r\nredis_mode:standalone\r\n"
          "os:%s %s %s\r\narch_bits:%d\r\nmultiplexing_api:libuv %s\r\nprocess_id:%d\r\n"
          "run_id:%s\r\ntcp_port:%lld\r\n",
          REDIS_COMPAT_VERSION, CAIRN_VERSION, u.sysname, u.release, u.machine,
          (int)(sizeof(void *) * 8), uv_version_string(), (int)getpid(), n->run_id, (long long)n->cfg.port);
        P("uptime_in_seconds:%lld\r\nuptime_in_days:%lld\r\nhz:%lld\r\nconfig_file:%s\r\n"
          "role:data-node\r\n",
          (long long)((now - n->start_ms) / 1000), (long long)((now - n->start_ms) / 86400000),
          (long long)n->cfg.hz, n->cfg.config_file ? n->cfg.config_file : "");
    }
    if (want(c, "clients", true)) {
        size_t blocked = 0;
        for (client_t *x = n->clients; x; x = x->next) blocked += (x->flags & CLIENT_BLOCKED) != 0;
        P("\r\n# Clients\r\nconnected_clients:%zu\r\nmaxclients:%lld\r\nblocked_clients:%zu\r\n",
          n->nclients, (long long)n->cfg.maxclients, blocked);
    }
    if (want(c, "memory", true)) {
        char h1[32], h2[32], h3[32];
        size_t used = cairn_mem_used(), rss = rss_bytes();
        human_bytes(h1, sizeof(h1), (double)used);
        human_bytes(h2, sizeof(h2), (double)rss);
        human_bytes(h3, sizeof(h3), (double)n->cfg.maxmemory);
        P("\r\n# Memory\r\nused_memory:%zu\r\nused_memory_human:%s\r\nused_memory_rss:%zu\r\n"
          "used_memory_rss_human:%s\r\nmaxmemory:%lld\r\nmaxmemory_human:%s\r\n"
          "maxmemory_policy:noeviction\r\nmem_allocator:libc\r\n",
          used, h1, rss, h2, (long long)n->cfg.maxmemory, h3);
    }
    if (want(c, "persistence", true)) {
        P("\r\n# Persistence\r\n");
        persist_info(n, &b);
    }
    if (want(c, "stats", true)) {
        P("\r\n# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
          "total_net_input_bytes:%llu\r\ntotal_net_output_bytes:%llu\r\nrejected_connections:%llu\r\n"
          "expired_keys:%llu\r\nevicted_keys:0\r\nevicted_clients:%llu\r\nkeyspace_hits:%llu\r\n"
          "keyspace_misses:%llu\r\ntotal_error_replies:0\r\nprotocol_errors:%llu\r\n",
          (unsigned long long)n->stats.connections, (unsigned long long)n->stats.commands,
          (unsigned long long)n->stats.net_in, (unsigned long long)n->stats.net_out,
          (unsigned long long)n->stats.rejected_conns, (unsigned long long)n->stats.expired_keys,
          (unsigned long long)n->stats.evicted_clients, (unsigned long long)n->stats.keyspace_hits,
          (unsigned long long)n->stats.keyspace_misses, (unsigned long long)n->stats.proto_errors);
    }
    if (want(c, "replication", true)) {
        P("\r\n# Replication\r\n");
        replica_info(n, &b);
        P("master_repl_offset:%llu\r\nlast_lsn:%llu\r\ndurable_lsn:%llu\r\ncommit_lsn:%llu\r\n",
          (unsigned long long)n->last_lsn, (unsigned long long)n->last_lsn,
          (unsigned long long)n->durable_lsn, (unsigned long long)n->commit_lsn);
    }
    if (want(c, "keyspace", true)) {
        P("\r\n# Keyspace\r\n");
        if (ks_size(n->ks))
            P("db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", ks_size(n->ks), ks_expires_count(n->ks));
    }
    /* Drop a leading blank line when the first section printed is not Server. */
    size_t skip = (b.len >= 2 && b.data[0] == '\r') ? 2 : 0;
    reply_verbatim(&c->out, c->proto, b.data + skip, b.len - skip);
    buf_close(&b);
}

/* ---- persistence commands ---- */

void cmd_save(client_t *c)
{
    if (persist_bgsave_running(c->node)) {
        reply_error(&c->out, "ERR Background save already in progress");
        return;
    }
    if (persist_bgsave(c->node, c) < 0) {
        reply_error(&c->out, "ERR snapshot failed to start; see the log");
        return;
    }
    c->flags |= CLIENT_BLOCKED; /* persist unblocks it with the result */
}

void cmd_bgsave(client_t *c)
{
    bool schedule = c->argc == 2 && arg_eq(&c->argv[1], "schedule");
    if (c->argc > 2 || (c->argc == 2 && !schedule)) {
        reply_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (persist_bgsave_running(c->node)) {
        if (schedule) {
            persist_schedule_bgsave(c->node);
            reply_simple(&c->out, "Background saving scheduled");
        }
        else reply_error(&c->out, "ERR Background save already in progress");
        return;
    }
    if (c->node->txn_open) {
        /* Inside EXEC the keyspace holds half a transaction: fork after it
         * (persist_cron starts it), as Redis does. */
        persist_schedule_bgsave(c->node);
        reply_simple(&c->out, "Background saving scheduled");
        return;
    }
    if (persist_bgsave(c->node, NULL) < 0) reply_error(&c->out, "ERR snapshot failed to start; see the log");
    else reply_simple(&c->out, "Background saving started");
}

void cmd_cairn(client_t *c) { replica_cmd(c); }

void cmd_lastsave(client_t *c) { reply_int(&c->out, persist_lastsave(c->node)); }

void cmd_shutdown(client_t *c)
{
    bool save = false, nosave = false, force = false, now = false, abort_ = false;
    for (size_t i = 1; i < c->argc; i++) {
        const resp_arg *a = &c->argv[i];
        if (arg_eq(a, "save")) save = true;
        else if (arg_eq(a, "nosave")) nosave = true;
        else if (arg_eq(a, "now")) now = true;
        else if (arg_eq(a, "abort")) abort_ = true;
        else if (arg_eq(a, "force")) force = true;
        else {
            reply_error(&c->out, ERR_SYNTAX);
            return;
        }
    }
    if ((save && nosave) || (abort_ && (save || nosave || now || force))) {
        reply_error(&c->out, ERR_SYNTAX);
        return;
    }
    if (abort_) {
        /* A cairn shutdown never waits (no replicas to let catch up
         * first), so there is never one in progress to abort. */
        reply_error(&c->out, "ERR No shutdown in progress.");
        return;
    }
    log_notice("SHUTDOWN requested by client id=%llu addr=%s", (unsigned long long)c->id, c->addr);
    if (node_shutdown(c->node, save, nosave) < 0 && !force) {
        reply_error(&c->out, "ERR Errors trying to SHUTDOWN. Check logs.");
        return;
    }
}
