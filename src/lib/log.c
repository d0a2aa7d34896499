#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *role = "cairn";
static enum log_level level = LOG_INFO;
static FILE *out;

void log_set_role(const char *r) { role = r; }
void log_set_level(enum log_level l) { level = l; }

int log_set_file(const char *path)
{
    FILE *f = fopen(path, "a");
    if (!f) return -errno;
    setvbuf(f, NULL, _IOLBF, 0);
    out = f;
    return 0;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "notice", "WARNING", "ERROR"};
    if (lvl < level) return;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[64];
    strftime(ts, sizeof(ts), "%d %b %Y %H:%M:%S", &tm);
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(out ? out : stderr, "%d:%s %s.%03d %s %s\n", (int)getpid(), role, ts,
            (int)(tv.tv_usec / 1000), names[lvl], msg);
}
