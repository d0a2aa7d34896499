/*
 * config.h — table-driven settings: parse, validate, format.
 *
 * A process describes its settings struct with a table of cfg_def entries
 * (one per field: name, type, offsetof, default, bounds, flags).  This module
 * knows nothing about any particular process; it reads and writes fields of
 * an opaque `void *obj` through the table.  Every way a value arrives — the
 * table's default, a redis.conf-style file, a `--name value` flag, CONFIG SET
 * at run time — goes through the one parser, cfg_set(), so they all accept
 * the same spellings and fail with the same messages.
 *
 * Start-up order (the caller drives it; later sources override earlier):
 *
 *     cfg_defaults()  ->  cfg_load_file(cfg_find_flag(.., "config"))
 *                     ->  cfg_load_args()
 *
 * Field storage by type:
 *
 *     CFG_BOOL    bool       "yes" / "no" (any case)
 *     CFG_INT     int64_t    Redis string2ll rules: "-5", "0", not "+5", not "05"
 *     CFG_BYTES   int64_t    memory value: digits then an optional unit, any case:
 *                            b=1 k=1000 kb=1024 m=10^6 mb=2^20 g=10^9 gb=2^30;
 *                            never negative
 *     CFG_ENUM    int        index into `enums` (a NULL-terminated name list)
 *     CFG_STRING  char *     owned (cairn_malloc); never NULL once defaults ran
 *
 * Bounds: `min`/`max` (inclusive) apply to CFG_INT and CFG_BYTES unless both
 * are 0, which means "any value the type can hold".
 *
 * Error messages follow Redis's CONFIG SET wording, without the
 * "ERR CONFIG SET failed (possibly related to argument 'x') - " prefix, which
 * is the command handler's to add.  Return codes: CAIRN_ENOTFOUND for an
 * unknown name, CAIRN_ERANGE for a number out of bounds, CAIRN_EINVAL for
 * anything else that is wrong with the input, -errno from the file system.
 *
 * Not thread-safe: a table is read-only, but an object must be touched by one
 * thread at a time.
 */
#ifndef CAIRN_CONFIG_H
#define CAIRN_CONFIG_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

typedef enum cfg_type {
    CFG_BOOL,
    CFG_INT,
    CFG_BYTES,
    CFG_ENUM,
    CFG_STRING,
} cfg_type;

enum cfg_flags {
    CFG_IMMUTABLE = 1 << 0, /* only at start-up (defaults, file, flags); CONFIG SET refuses it */
};

/* Largest config file cfg_load_file accepts (a hard limit on the parser). */
#define CFG_FILE_MAX (1 << 20)

typedef struct cfg_def {
    const char *name;          /* lower-case, e.g. "maxmemory"; an entry {.name = NULL}
                                  ends the table (plain {NULL} trips clang -Wextra) */
    const char *alias;         /* another accepted name (e.g. "appendfsync"), or NULL */
    cfg_type type;
    size_t offset;             /* offsetof(struct, field) */
    const char *def;           /* default, as text; NULL means 0 / "no" / first enum / "" */
    int64_t min, max;          /* inclusive; both 0 = unbounded (CFG_INT, CFG_BYTES) */
    const char *const *enums;  /* CFG_ENUM: names, NULL-terminated */
    unsigned flags;            /* CFG_IMMUTABLE */
} cfg_def;

/* Print every setting of `tab` as "  --name <default>" lines (enums list
 * their values), for a --help. */
void cfg_print_help(const cfg_def *tab, FILE *f);

/* Set every field in `tab` to its default.  `obj` must be zeroed or hold
 * values set through this table (an old string is freed, not leaked).
 * A default that fails to parse is a bug in the table: it asserts. */
void cfg_defaults(const cfg_def *tab, void *obj);

/* Free the owned strings of `obj` and set those fields to NULL.  Other fields
 * are left as they are.  Safe on a zeroed object and safe to call twice. */
void cfg_free(const cfg_def *tab, void *obj);

/* Parse `value` for the setting `name` (or its alias; any case) and store it.
 * `runtime` is true for CONFIG SET: then a CFG_IMMUTABLE setting is refused.
 * Returns 0, or <0 with a message in err[errlen] (err may be NULL) and `obj`
 * unchanged. */
int cfg_set(const cfg_def *tab, void *obj, const char *name, const char *value, bool runtime,
            char *err, size_t errlen);

/* Apply a redis.conf-style file: one `name value` per line; blank lines and
 * lines whose first non-blank is '#' are skipped (a '#' later in a line is
 * part of the value, as in Redis); a value may be "double quoted" (escapes
 * \" \\ \n \r \t \b \a \xHH) or 'single quoted' (escape \'); CRLF endings are
 * fine; a name given twice: the last wins.  Exactly one value per name.
 * Stops at the first bad line: returns <0 and err = "PATH:LINE: message"
 * (settings from earlier lines stay applied).  A file that cannot be read:
 * -errno and err = "PATH: strerror".  Larger than CFG_FILE_MAX: CAIRN_ELIMIT. */
int cfg_load_file(const cfg_def *tab, void *obj, const char *path, char *err, size_t errlen);

/* Apply `--name value` and `--name=value` from argv[first..argc).  The word
 * after `--name` is always its value, even if it starts with "--" (write
 * `--name=--x` to make that explicit).  Returns 0, or <0 with
 * err = "--name: message" (unknown setting, missing value, bad value) or
 * "unexpected argument 'x'" for a word that is not a flag.  Every word must
 * be a setting: a caller with flags of its own (e.g. --config) removes them
 * first. */
int cfg_load_args(const cfg_def *tab, void *obj, int argc, char **argv, int first, char *err,
                  size_t errlen);

/* The value of `--name value` / `--name=value` in argv[first..argc) (name
 * compared in any case; the last occurrence wins), or NULL if absent or given
 * without a value.  The pointer is into argv.  Words are scanned with the same
 * grammar as cfg_load_args, so a value that happens to read "--name" is not
 * mistaken for the flag. */
const char *cfg_find_flag(int argc, char **argv, int first, const char *name);

/* Format the current value of `d` as CONFIG GET shows it: numbers and bytes
 * as plain decimal integers, bools "yes"/"no", enums by name, strings as
 * stored.  Like snprintf: writes at most outlen-1 bytes plus a NUL (if
 * outlen > 0) and returns the length of the whole value, so a return
 * >= outlen means the output was truncated.  `d` must be an entry of `tab`. */
size_t cfg_get(const cfg_def *tab, const void *obj, const cfg_def *d, char *out, size_t outlen);

/* The entry named `name` or aliased so (any case), or NULL.  Pointers into
 * `tab` live as long as the table (normally static). */
const cfg_def *cfg_lookup(const cfg_def *tab, const char *name);

/* Call fn(arg, d) once, in table order, for each entry whose name or alias
 * matches the glob `pattern` (any case, as CONFIG GET does). */
void cfg_match(const cfg_def *tab, const char *pattern, void (*fn)(void *arg, const cfg_def *d),
               void *arg);

/* The canonical name of `d` (never the alias). */
const char *cfg_name(const cfg_def *d);

#endif
