/* CoRE Link Format (RFC 6690) parsing. */
#pragma once

#include <stddef.h>

#define LINKFORMAT_MAX_ATTRS 16

/* One attribute: name, and value with quotes removed (NULL value: no "="). */
typedef struct linkformat_attr {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} linkformat_attr_t;

/* One link: the URI between < and >, and its attributes. All borrow the input. */
typedef struct linkformat_link {
    const char *uri;
    size_t uri_len;
    size_t attr_count;
    linkformat_attr_t attrs[LINKFORMAT_MAX_ATTRS];
} linkformat_link_t;

/*
 * Calls fn for each link in text (not NUL-terminated; len bytes). Accepts
 * RFC 6690 syntax: links separated by ",", each "<uri>" followed by
 * ";name" or ";name=value" attributes, values as tokens or quoted
 * strings (with backslash escapes kept as they are), optional
 * whitespace after separators. A non-zero return from fn stops and is
 * returned. Returns 0, or LWM2MD_ERR_INVALID for malformed text (an
 * empty text has no links and is valid), LWM2MD_ERR_TOO_BIG for a link
 * with more than LINKFORMAT_MAX_ATTRS attributes.
 */
typedef int (*linkformat_fn)(const linkformat_link_t *link, void *ctx);
int linkformat_parse(const char *text, size_t len, linkformat_fn fn, void *ctx);

/* The attribute with this name in link, or NULL. */
const linkformat_attr_t *linkformat_find_attr(const linkformat_link_t *link, const char *name);
