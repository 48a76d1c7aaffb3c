/* Error codes shared by every layer: 0 is success, failures are negative. */
#pragma once

/*
 * One enum for the whole server. Protocol codes (CoAP, HTTP) are chosen
 * from these only at the protocol edge.
 */
typedef enum lwm2md_error {
    LWM2MD_OK = 0,
    LWM2MD_ERR_NOMEM = -1,        /* an allocation failed */
    LWM2MD_ERR_INVALID = -2,      /* malformed input or argument */
    LWM2MD_ERR_TRUNCATED = -3,    /* input ended before a field did */
    LWM2MD_ERR_TOO_BIG = -4,      /* a bound was exceeded */
    LWM2MD_ERR_NOT_FOUND = -5,    /* no such item */
    LWM2MD_ERR_EXISTS = -6,       /* the item, or a unique field of it, exists */
    LWM2MD_ERR_IO = -7,           /* a file or socket operation failed */
    LWM2MD_ERR_STORE = -8,        /* the database failed */
    LWM2MD_ERR_FULL = -9,         /* a queue or table is at its cap */
    LWM2MD_ERR_UNSUPPORTED = -10, /* valid but not supported */
    LWM2MD_ERR_DENIED = -11,      /* not allowed for this peer */
    LWM2MD_ERR_CRYPTO = -12,      /* a key, certificate or TLS operation failed */
    LWM2MD_ERR_PASSWORD = -13,    /* wrong password for a key or store */
    LWM2MD_ERR_AGAIN = -14,       /* not ready; try again later */
} lwm2md_error_t;

/* A static, lowercase description of an error code. Any thread. */
const char *lwm2md_strerror(int code);
