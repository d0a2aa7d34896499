#include "lib/err.h"

#include <string.h>

const char *cairn_strerror(int code)
{
    switch (code) {
#define CAIRN_ERR_CASE(name, c, text) case CAIRN_##name: return #name ": " text;
    CAIRN_ERR_MAP(CAIRN_ERR_CASE)
#undef CAIRN_ERR_CASE
    case 0: return "ok";
    default: return code < 0 ? strerror(-code) : "unknown";
    }
}
