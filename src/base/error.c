/* Descriptions of the shared error codes. */
#include "base/error.h"

const char *lwm2md_strerror(int code)
{
    switch (code) {
    case LWM2MD_OK:
        return "success";
    case LWM2MD_ERR_NOMEM:
        return "out of memory";
    case LWM2MD_ERR_INVALID:
        return "invalid input";
    case LWM2MD_ERR_TRUNCATED:
        return "truncated input";
    case LWM2MD_ERR_TOO_BIG:
        return "too big";
    case LWM2MD_ERR_NOT_FOUND:
        return "not found";
    case LWM2MD_ERR_EXISTS:
        return "already exists";
    case LWM2MD_ERR_IO:
        return "input/output error";
    case LWM2MD_ERR_STORE:
        return "database error";
    case LWM2MD_ERR_FULL:
        return "limit reached";
    case LWM2MD_ERR_UNSUPPORTED:
        return "not supported";
    case LWM2MD_ERR_DENIED:
        return "not allowed";
    case LWM2MD_ERR_CRYPTO:
        return "cryptographic error";
    case LWM2MD_ERR_PASSWORD:
        return "wrong password";
    case LWM2MD_ERR_AGAIN:
        return "try again";
    default:
        return "unknown error";
    }
}
