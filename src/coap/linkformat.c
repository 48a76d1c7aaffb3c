/* CoRE Link Format (RFC 6690 section 2) parser: links and their attributes. */
#include "coap/linkformat.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "base/error.h"

/* A read position in the text; every read checks `end`. */
typedef struct cursor {
    const char *pos;
    const char *end;
} cursor_t;

static bool at_end(const cursor_t *c)
{
    return c->pos == c->end;
}

static bool next_is(const cursor_t *c, char ch)
{
    return !at_end(c) && *c->pos == ch;
}

static bool is_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_hex(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* URI-Reference characters other than '%' (RFC 3986 2.2, 2.3). */
static bool is_uri_char(unsigned char ch)
{
    return is_alnum(ch) || (ch != 0 && strchr("-._~:/?#[]@!$&'()*+,;=", ch) != NULL);
}

/* attr-char of a parmname (RFC 6690 2 by way of RFC 5987 3.2.1). */
static bool is_attr_char(unsigned char ch)
{
    return is_alnum(ch) || (ch != 0 && strchr("!#$&+-.^_`|~", ch) != NULL);
}

/* ptokenchar (RFC 6690 2): printable ASCII except space " , ; \ */
static bool is_ptoken_char(unsigned char ch)
{
    return ch > 0x20 && ch < 0x7f && ch != '"' && ch != ',' && ch != ';' && ch != '\\';
}

/* Whitespace is tolerated after "," and ";" (clients pretty-print lists). */
static void skip_whitespace(cursor_t *c)
{
    while (!at_end(c) &&
           (*c->pos == ' ' || *c->pos == '\t' || *c->pos == '\r' || *c->pos == '\n')) {
        c->pos++;
    }
}

/* "<" URI-Reference ">": the URI may be empty; %XX must be complete. */
static int parse_uri(cursor_t *c, linkformat_link_t *link)
{
    if (!next_is(c, '<')) {
        return LWM2MD_ERR_INVALID;
    }
    c->pos++;
    link->uri = c->pos;

    while (!at_end(c) && *c->pos != '>') {
        unsigned char ch = (unsigned char)*c->pos;
        if (ch == '%') {
            if (c->end - c->pos < 3 || !is_hex((unsigned char)c->pos[1]) ||
                !is_hex((unsigned char)c->pos[2])) {
                return LWM2MD_ERR_INVALID;
            }
            c->pos += 3;
        } else if (is_uri_char(ch)) {
            c->pos++;
        } else {
            return LWM2MD_ERR_INVALID;
        }
    }
    if (at_end(c)) {
        return LWM2MD_ERR_INVALID;
    }

    link->uri_len = (size_t)(c->pos - link->uri);
    c->pos++;
    return 0;
}

/*
 * quoted-string (RFC 2616 2.2): text without control characters, and
 * "\" escaping any ASCII character. Escapes stay in the value as sent.
 */
static int parse_quoted(cursor_t *c, linkformat_attr_t *attr)
{
    c->pos++;
    attr->value = c->pos;

    while (!at_end(c) && *c->pos != '"') {
        unsigned char ch = (unsigned char)*c->pos;
        if (ch == '\\') {
            if (c->end - c->pos < 2 || (unsigned char)c->pos[1] > 0x7f) {
                return LWM2MD_ERR_INVALID;
            }
            c->pos += 2;
        } else if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return LWM2MD_ERR_INVALID;
        } else {
            c->pos++;
        }
    }
    if (at_end(c)) {
        return LWM2MD_ERR_INVALID;
    }

    attr->value_len = (size_t)(c->pos - attr->value);
    c->pos++;
    return 0;
}

/* ptoken (RFC 6690 2): one or more ptokenchar. */
static int parse_ptoken(cursor_t *c, linkformat_attr_t *attr)
{
    attr->value = c->pos;
    while (!at_end(c) && is_ptoken_char((unsigned char)*c->pos)) {
        c->pos++;
    }
    attr->value_len = (size_t)(c->pos - attr->value);
    return attr->value_len > 0 ? 0 : LWM2MD_ERR_INVALID;
}

/* link-extension: parmname ["*"] ["=" (ptoken / quoted-string)]. */
static int parse_attr(cursor_t *c, linkformat_attr_t *attr)
{
    attr->name = c->pos;
    while (!at_end(c) && is_attr_char((unsigned char)*c->pos)) {
        c->pos++;
    }
    if (c->pos == attr->name) {
        return LWM2MD_ERR_INVALID;
    }
    if (next_is(c, '*')) {
        c->pos++;
    }
    attr->name_len = (size_t)(c->pos - attr->name);
    attr->value = NULL;
    attr->value_len = 0;

    if (!next_is(c, '=')) {
        return 0;
    }
    c->pos++;
    if (next_is(c, '"')) {
        return parse_quoted(c, attr);
    }
    return parse_ptoken(c, attr);
}

/* link-value: "<" URI-Reference ">" *(";" link-param). */
static int parse_link(cursor_t *c, linkformat_link_t *link)
{
    link->attr_count = 0;
    int rc = parse_uri(c, link);
    if (rc != 0) {
        return rc;
    }

    while (next_is(c, ';')) {
        c->pos++;
        skip_whitespace(c);
        if (link->attr_count == LINKFORMAT_MAX_ATTRS) {
            return LWM2MD_ERR_TOO_BIG;
        }
        rc = parse_attr(c, &link->attrs[link->attr_count]);
        if (rc != 0) {
            return rc;
        }
        link->attr_count++;
    }
    return 0;
}

/* One pass over the text, calling fn (when not NULL) for each link. */
static int parse_links(const char *text, size_t len, linkformat_fn fn, void *ctx)
{
    cursor_t cursor = {text, text + len};
    linkformat_link_t link;

    for (;;) {
        int rc = parse_link(&cursor, &link);
        if (rc == 0 && fn != NULL) {
            rc = fn(&link, ctx);
        }
        if (rc != 0) {
            return rc;
        }

        /* Links are separated by ","; a trailing "," is malformed. */
        if (at_end(&cursor)) {
            return 0;
        }
        if (!next_is(&cursor, ',')) {
            return LWM2MD_ERR_INVALID;
        }
        cursor.pos++;
        skip_whitespace(&cursor);
    }
}

/*
 * The whole text is checked before fn sees any link, so a malformed
 * list never reaches the caller halfway.
 */
int linkformat_parse(const char *text, size_t len, linkformat_fn fn, void *ctx)
{
    if (len == 0) {
        return 0;
    }
    if (text == NULL) {
        return LWM2MD_ERR_INVALID;
    }

    int rc = parse_links(text, len, NULL, NULL);
    if (rc == 0 && fn != NULL) {
        rc = parse_links(text, len, fn, ctx);
    }
    return rc;
}

/* Parameter names compare without regard to case (RFC 8288 appendix B.3). */
const linkformat_attr_t *linkformat_find_attr(const linkformat_link_t *link, const char *name)
{
    size_t name_len = strlen(name);
    for (size_t i = 0; i < link->attr_count; i++) {
        const linkformat_attr_t *attr = &link->attrs[i];
        if (attr->name_len == name_len && strncasecmp(attr->name, name, name_len) == 0) {
            return attr;
        }
    }
    return NULL;
}
