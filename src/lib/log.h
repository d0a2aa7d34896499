/*
 * log.h — one log line per event, to stderr (or a file):
 *   PID:ROLE DD Mon YYYY HH:MM:SS.mmm LEVEL message
 * ROLE is set once at start (node, manager, gateway, ...).
 */
#ifndef CAIRN_LOG_H
#define CAIRN_LOG_H

enum log_level { LOG_DEBUG, LOG_INFO, LOG_NOTICE, LOG_WARN, LOG_ERROR };

void log_set_role(const char *role);
void log_set_level(enum log_level lvl);
/* Returns 0, or -errno if the file cannot be opened. */
int log_set_file(const char *path);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
