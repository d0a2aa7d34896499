/*
 * err.h — cairn's one error convention.
 *
 * An int-returning function returns 0 (or a non-negative count) on success
 * and a negative code on failure: either one of the CAIRN_E* codes below or a
 * negated errno, which passes through unchanged.  "Need more bytes" is
 * CAIRN_EAGAIN: not an error, only a request for more input.
 *
 * The codes come from one X-macro table so that logs print names.
 */
#ifndef CAIRN_ERR_H
#define CAIRN_ERR_H

#define CAIRN_ERR_MAP(X)                                                   \
    X(EAGAIN,    -20001, "need more input")                                \
    X(EPROTO,    -20002, "protocol error")                                 \
    X(ENOMEM,    -20003, "out of memory")                                  \
    X(ECORRUPT,  -20004, "corrupt data")                                   \
    X(ETORN,     -20005, "torn record at end of file")                     \
    X(ERANGE,    -20006, "value out of range")                             \
    X(EINVAL,    -20007, "invalid argument")                               \
    X(ENOTFOUND, -20008, "not found")                                      \
    X(EWRONGTYPE,-20009, "wrong type")                                     \
    X(ELIMIT,    -20010, "limit exceeded")                                 \
    X(EEOF,      -20011, "end of input")

enum cairn_err {
#define CAIRN_ERR_ENUM(name, code, text) CAIRN_##name = (code),
    CAIRN_ERR_MAP(CAIRN_ERR_ENUM)
#undef CAIRN_ERR_ENUM
};

/* Returns a static string naming `code` (a CAIRN_E* code or -errno). */
const char *cairn_strerror(int code);

#endif
