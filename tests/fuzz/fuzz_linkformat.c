/*
 * libFuzzer target for the link-format parsers: linkformat_parse() on
 * any text, then objlinks_parse() on the same text, with the invariants
 * each promises.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "coap/linkformat.h"
#include "lwm2m/objlinks.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct span {
    const char *start;
    const char *end;
    size_t links;
} span_t;

static bool inside(const span_t *span, const char *p, size_t len)
{
    return p >= span->start && p <= span->end && len <= (size_t)(span->end - p);
}

/* Every piece of a link lies within the text; names are never empty. */
static int check_link(const linkformat_link_t *link, void *ctx)
{
    span_t *span = ctx;
    span->links++;

    CHECK(inside(span, link->uri, link->uri_len));
    CHECK(link->attr_count <= LINKFORMAT_MAX_ATTRS);
    for (size_t i = 0; i < link->attr_count; i++) {
        const linkformat_attr_t *attr = &link->attrs[i];
        CHECK(attr->name_len > 0 && inside(span, attr->name, attr->name_len));
        CHECK(attr->value == NULL || inside(span, attr->value, attr->value_len));
        CHECK(linkformat_find_attr(link, "rt") == NULL ||
              linkformat_find_attr(link, "RT") == linkformat_find_attr(link, "rt"));
    }
    return 0;
}

static void check_objlinks(const objlinks_t *out)
{
    size_t root_len = strnlen(out->root, sizeof(out->root));
    CHECK(root_len <= OBJLINKS_ROOT_MAX);
    CHECK(root_len == 0 || (out->root[0] == '/' && out->root[root_len - 1] != '/'));
    CHECK(out->content_type_count <= sizeof(out->content_types) / sizeof(out->content_types[0]));
    CHECK(out->count <= OBJLINKS_MAX);
    for (size_t i = 0; i < out->count; i++) {
        const objlink_t *link = &out->links[i];
        CHECK(link->instance_id >= -1 && link->instance_id <= 65534);
        CHECK(strnlen(link->version, sizeof(link->version)) < sizeof(link->version));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact copy, not NUL-terminated, so an over-read trips ASan. */
    char *text = malloc(size > 0 ? size : 1);
    CHECK(text != NULL);
    if (size > 0) {
        memcpy(text, data, size);
    }

    span_t span = {text, text + size, 0};
    int rc = linkformat_parse(text, size, check_link, &span);
    CHECK(rc == 0 || rc == LWM2MD_ERR_INVALID || rc == LWM2MD_ERR_TOO_BIG);
    CHECK(rc == 0 || span.links == 0);

    objlinks_t *out = malloc(sizeof(*out));
    CHECK(out != NULL);
    int objrc = objlinks_parse(text, size, out);
    CHECK(objrc == 0 || objrc == LWM2MD_ERR_INVALID || objrc == LWM2MD_ERR_TOO_BIG);
    if (rc != 0) {
        CHECK(objrc == rc);
    }
    if (objrc == 0) {
        check_objlinks(out);
        CHECK(out->count <= span.links);
    } else {
        CHECK(out->count == 0 && out->root[0] == '\0');
    }

    free(out);
    free(text);
    return 0;
}
