/* The object list of a Register or Update payload (LwM2M Core 1.x 6.2.1). */
#include "lwm2m/objlinks.h"

#include <stdbool.h>
#include <string.h>

#include "base/error.h"
#include "coap/linkformat.h"

/*
 * Decisions where the specification leaves room, each answered with
 * LWM2MD_ERR_INVALID so that a registration never half-succeeds:
 *
 * - The root link is the one with rt="oma.lwm2m" (LwM2M 1.1 6.2.1.1),
 *   or a plain "</>" (LwM2M 1.0 puts ct= on it without rt). Its ct=
 *   is one number or a quoted, space-separated list; numbers past the
 *   eight the table holds are ignored, a non-number is malformed. A
 *   second root link is malformed: the root would be ambiguous.
 * - The root link may come anywhere in the list; it is found in a first
 *   pass, and every other link is read relative to it in a second.
 * - A link outside the root ("</1/0>" when the root is "/lwm2m") is
 *   refused: the client said its objects live under the root.
 * - Links deeper than an instance ("</3/0/1>") are refused: a Register
 *   or Update lists objects and instances only (6.2.1, table of the
 *   "Objects and Object Instances" parameter).
 * - Ids are plain decimals without leading zeros; object 0-65535,
 *   instance 0-65534 (65535 is reserved, LwM2M Core 7.1).
 * - "ver" must look like "1.0": digits, a dot, digits, at most seven
 *   characters. Other attributes on object links are ignored.
 * - Duplicate links are kept as sent; the registration layer decides.
 * - On any error *out is left empty (zero links, root "").
 */

#define ROOT_LINK_TYPE "oma.lwm2m"
#define INSTANCE_ID_MAX 65534
#define ID_DIGITS_MAX 5

typedef struct parse_state {
    objlinks_t *out;
    bool root_found;
} parse_state_t;

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/*
 * Reads a decimal id from text[0..len): 1-5 digits, no leading zero,
 * at most `max`. Returns 0 or LWM2MD_ERR_INVALID.
 */
static int parse_id(const char *text, size_t len, uint32_t max, uint32_t *out)
{
    if (len == 0 || len > ID_DIGITS_MAX || (len > 1 && text[0] == '0')) {
        return LWM2MD_ERR_INVALID;
    }

    uint32_t value = 0;
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(text[i])) {
            return LWM2MD_ERR_INVALID;
        }
        value = value * 10 + (uint32_t)(text[i] - '0');
    }
    if (value > max) {
        return LWM2MD_ERR_INVALID;
    }
    *out = value;
    return 0;
}

/* True when the space-separated list `value` holds `word`. */
static bool list_has(const char *value, size_t len, const char *word)
{
    size_t word_len = strlen(word);
    size_t pos = 0;

    while (pos < len) {
        size_t start = pos;
        while (pos < len && value[pos] != ' ') {
            pos++;
        }
        if (pos - start == word_len && memcmp(value + start, word, word_len) == 0) {
            return true;
        }
        pos++;
    }
    return false;
}

static bool is_root_link(const linkformat_link_t *link)
{
    const linkformat_attr_t *rt = linkformat_find_attr(link, "rt");
    if (rt != NULL && rt->value != NULL && list_has(rt->value, rt->value_len, ROOT_LINK_TYPE)) {
        return true;
    }
    return link->uri_len == 1 && link->uri[0] == '/';
}

/* A path segment of the root: unreserved characters, not "." or "..". */
static bool is_root_segment(const char *segment, size_t len)
{
    if (len == 0 || (len == 1 && segment[0] == '.') ||
        (len == 2 && segment[0] == '.' && segment[1] == '.')) {
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        char ch = segment[i];
        bool ok = is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (!ok) {
            return false;
        }
    }
    return true;
}

/* Stores the root path: "/" becomes "", "/a/b/" becomes "/a/b". */
static int set_root(objlinks_t *out, const char *uri, size_t len)
{
    if (len == 0 || uri[0] != '/') {
        return LWM2MD_ERR_INVALID;
    }
    if (len > 2 && uri[len - 1] == '/') {
        len--;
    }
    if (len == 1) {
        out->root[0] = '\0';
        return 0;
    }
    if (len > OBJLINKS_ROOT_MAX) {
        return LWM2MD_ERR_TOO_BIG;
    }

    /* Each "/segment" in turn. */
    size_t pos = 1;
    while (pos <= len) {
        size_t start = pos;
        while (pos < len && uri[pos] != '/') {
            pos++;
        }
        if (!is_root_segment(uri + start, pos - start)) {
            return LWM2MD_ERR_INVALID;
        }
        pos++;
    }

    memcpy(out->root, uri, len);
    out->root[len] = '\0';
    return 0;
}

/* ct= on the root link: content formats, one or space-separated. */
static int set_content_types(objlinks_t *out, const linkformat_attr_t *ct)
{
    if (ct->value == NULL || ct->value_len == 0) {
        return LWM2MD_ERR_INVALID;
    }

    size_t pos = 0;
    while (pos <= ct->value_len) {
        size_t start = pos;
        while (pos < ct->value_len && ct->value[pos] != ' ') {
            pos++;
        }
        uint32_t format = 0;
        int rc = parse_id(ct->value + start, pos - start, UINT16_MAX, &format);
        if (rc != 0) {
            return rc;
        }
        if (out->content_type_count < sizeof(out->content_types) / sizeof(out->content_types[0])) {
            out->content_types[out->content_type_count++] = (uint16_t)format;
        }
        pos++;
    }
    return 0;
}

/* First pass: the root link, its path and its content formats. */
static int find_root(const linkformat_link_t *link, void *ctx)
{
    parse_state_t *state = ctx;
    if (!is_root_link(link)) {
        return 0;
    }
    if (state->root_found) {
        return LWM2MD_ERR_INVALID;
    }
    state->root_found = true;

    int rc = set_root(state->out, link->uri, link->uri_len);
    const linkformat_attr_t *ct = linkformat_find_attr(link, "ct");
    if (rc == 0 && ct != NULL) {
        rc = set_content_types(state->out, ct);
    }
    return rc;
}

/* "ver" (LwM2M Core 6.2.1.1): "major.minor" in at most 7 characters. */
static int set_version(objlink_t *entry, const linkformat_attr_t *ver)
{
    if (ver->value == NULL || ver->value_len == 0 || ver->value_len >= sizeof(entry->version)) {
        return LWM2MD_ERR_INVALID;
    }

    const char *dot = memchr(ver->value, '.', ver->value_len);
    if (dot == NULL || dot == ver->value || dot == ver->value + ver->value_len - 1) {
        return LWM2MD_ERR_INVALID;
    }
    for (size_t i = 0; i < ver->value_len; i++) {
        if (ver->value + i != dot && !is_digit(ver->value[i])) {
            return LWM2MD_ERR_INVALID;
        }
    }

    memcpy(entry->version, ver->value, ver->value_len);
    entry->version[ver->value_len] = '\0';
    return 0;
}

/* "/object" or "/object/instance" after the root; anything else is refused. */
static int parse_object_path(const char *path, size_t len, objlink_t *entry)
{
    if (len < 2 || path[0] != '/') {
        return LWM2MD_ERR_INVALID;
    }
    path++;
    len--;

    const char *slash = memchr(path, '/', len);
    size_t object_len = slash != NULL ? (size_t)(slash - path) : len;
    uint32_t object_id = 0;
    int rc = parse_id(path, object_len, UINT16_MAX, &object_id);
    if (rc != 0) {
        return rc;
    }
    entry->object_id = (uint16_t)object_id;
    entry->instance_id = -1;
    if (slash == NULL) {
        return 0;
    }

    /* The instance is the last segment: a resource path fails here. */
    uint32_t instance_id = 0;
    rc = parse_id(slash + 1, len - object_len - 1, INSTANCE_ID_MAX, &instance_id);
    if (rc != 0) {
        return rc;
    }
    entry->instance_id = (int32_t)instance_id;
    return 0;
}

/* Second pass: each object or instance link, relative to the root. */
static int add_object_link(const linkformat_link_t *link, void *ctx)
{
    parse_state_t *state = ctx;
    objlinks_t *out = state->out;
    if (is_root_link(link)) {
        return 0;
    }

    size_t root_len = strlen(out->root);
    if (link->uri_len <= root_len || memcmp(link->uri, out->root, root_len) != 0) {
        return LWM2MD_ERR_INVALID;
    }
    if (out->count == OBJLINKS_MAX) {
        return LWM2MD_ERR_TOO_BIG;
    }

    objlink_t *entry = &out->links[out->count];
    memset(entry, 0, sizeof(*entry));
    int rc = parse_object_path(link->uri + root_len, link->uri_len - root_len, entry);
    const linkformat_attr_t *ver = linkformat_find_attr(link, "ver");
    if (rc == 0 && ver != NULL) {
        rc = set_version(entry, ver);
    }
    if (rc == 0) {
        out->count++;
    }
    return rc;
}

int objlinks_parse(const char *text, size_t len, objlinks_t *out)
{
    parse_state_t state = {.out = out, .root_found = false};
    memset(out, 0, sizeof(*out));

    int rc = linkformat_parse(text, len, find_root, &state);
    if (rc == 0) {
        rc = linkformat_parse(text, len, add_object_link, &state);
    }

    if (rc != 0) {
        memset(out, 0, sizeof(*out));
    }
    return rc;
}
