/* The object list of a Register or Update (LwM2M Core 6.2.1). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define OBJLINKS_MAX 512 /* object and instance links in one registration */
#define OBJLINKS_ROOT_MAX 64

/* One object or object instance the client announced. */
typedef struct objlink {
    uint16_t object_id;
    int32_t instance_id; /* -1 when the link names the object only */
    char version[8];     /* "ver" attribute ("1.1"), empty when absent */
} objlink_t;

typedef struct objlinks {
    char root[OBJLINKS_ROOT_MAX + 1]; /* alternate root path, "" for "/" */
    uint16_t content_types[8];        /* ct= on the root link */
    size_t content_type_count;
    size_t count;
    objlink_t links[OBJLINKS_MAX];
} objlinks_t;

/*
 * Parses a registration payload: "</>;rt="oma.lwm2m";ct=..." or
 * "</lwm2m>;rt="oma.lwm2m"" names the root (alternate path), then links
 * like "</1/0>", "</3>;ver=1.1", "</lwm2m/3/0>" under that root.
 * Links to paths that are not /object or /object/instance under the
 * root (with ids 0-65535, instance 0-65534) are rejected; an object id
 * without instance is allowed (LwM2M 1.1 sends "</3>;ver=1.1").
 * Returns 0, LWM2MD_ERR_INVALID for malformed text, LWM2MD_ERR_TOO_BIG
 * when there are more than OBJLINKS_MAX links.
 */
int objlinks_parse(const char *text, size_t len, objlinks_t *out);
