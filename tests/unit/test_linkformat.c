/* Tests of the CoRE Link Format parser (src/coap/linkformat.c, RFC 6690). */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"
#include "coap/linkformat.h"

#define MAX_SEEN 8

/* What the callback saw, copied out so it outlives the parse. */
typedef struct seen {
    size_t count;
    int stop_at; /* return 7 from this call (1-based), 0: never */
    char uri[MAX_SEEN][64];
    size_t attr_count[MAX_SEEN];
    linkformat_link_t first;
} seen_t;

static int collect(const linkformat_link_t *link, void *ctx)
{
    seen_t *seen = ctx;
    if (seen->count < MAX_SEEN) {
        size_t n = link->uri_len < 63 ? link->uri_len : 63;
        memcpy(seen->uri[seen->count], link->uri, n);
        seen->uri[seen->count][n] = '\0';
        seen->attr_count[seen->count] = link->attr_count;
    }
    if (seen->count == 0) {
        seen->first = *link;
    }
    seen->count++;
    if (seen->stop_at != 0 && (size_t)seen->stop_at == seen->count) {
        return 7;
    }
    return 0;
}

/* Parses a copy in a block of exactly strlen(text) bytes (no NUL for ASan). */
static int parse_exact(const char *text, seen_t *seen)
{
    size_t len = strlen(text);
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = linkformat_parse(copy, len, collect, seen);
    free(copy);
    return rc;
}

static void assert_value(const linkformat_link_t *link, const char *name, const char *value)
{
    const linkformat_attr_t *attr = linkformat_find_attr(link, name);
    assert_non_null(attr);
    if (value == NULL) {
        assert_null(attr->value);
        return;
    }
    assert_non_null(attr->value);
    assert_int_equal(attr->value_len, strlen(value));
    assert_memory_equal(attr->value, value, attr->value_len);
}

static void test_empty_text(void **state)
{
    seen_t seen = {0};
    assert_int_equal(linkformat_parse(NULL, 0, collect, &seen), 0);
    assert_int_equal(linkformat_parse("", 0, collect, &seen), 0);
    assert_int_equal(seen.count, 0);
}

static void test_simple_links(void **state)
{
    seen_t seen = {0};
    assert_int_equal(parse_exact("</1/0>,</3/0>,<>", &seen), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.uri[0], "/1/0");
    assert_string_equal(seen.uri[1], "/3/0");
    assert_string_equal(seen.uri[2], "");
    assert_int_equal(seen.attr_count[0], 0);
}

static void test_attributes(void **state)
{
    const char *text = "</sensors/temp>;rt=\"temperature-c\";if=sensor;ct=41;obs;"
                       "title=\"say \\\"hi\\\", now\";x=\"\";title*=UTF-8'en'%e2%82%ac,</b>";
    seen_t seen = {0};

    assert_int_equal(linkformat_parse(text, strlen(text), collect, &seen), 0);
    assert_int_equal(seen.count, 2);
    assert_string_equal(seen.uri[0], "/sensors/temp");
    assert_int_equal(seen.attr_count[0], 7);

    const linkformat_link_t *link = &seen.first;
    assert_value(link, "rt", "temperature-c");
    assert_value(link, "if", "sensor");
    assert_value(link, "ct", "41");
    assert_value(link, "obs", NULL);
    /* Escapes stay as sent; a quoted "," does not end the link. */
    assert_value(link, "title", "say \\\"hi\\\", now");
    assert_value(link, "x", "");
    assert_value(link, "title*", "UTF-8'en'%e2%82%ac");
    assert_int_equal(link->attrs[0].name_len, 2);
    assert_memory_equal(link->attrs[0].name, "rt", 2);
}

static void test_find_attr(void **state)
{
    const char *text = "</a>;RT=x;ver=1.1";
    seen_t seen = {0};

    assert_int_equal(linkformat_parse(text, strlen(text), collect, &seen), 0);
    assert_value(&seen.first, "rt", "x");
    assert_value(&seen.first, "VER", "1.1");
    assert_null(linkformat_find_attr(&seen.first, "r"));
    assert_null(linkformat_find_attr(&seen.first, "rtx"));
    assert_null(linkformat_find_attr(&seen.first, "ct"));
}

static void test_whitespace_after_separators(void **state)
{
    seen_t seen = {0};
    assert_int_equal(parse_exact("</1/0>, </2/0>;\n rt=x,\r\n\t</3>", &seen), 0);
    assert_int_equal(seen.count, 3);
    assert_string_equal(seen.uri[2], "/3");

    /* But not elsewhere. */
    const char *bad[] = {" </1/0>",   "</1/0> ",     "</1/0> ,</2>",
                         "</1/0> ;a", "</1/0>;a =b", "</1/0>;a= b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        seen = (seen_t){0};
        assert_int_equal(parse_exact(bad[i], &seen), LWM2MD_ERR_INVALID);
        assert_int_equal(seen.count, 0);
    }
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "<",                /* unterminated < */
        "</1/0",            /* unterminated < */
        "/1/0>",            /* no < */
        "1",                /* not a link */
        ",",                /* empty link */
        "</1/0>,",          /* trailing separator */
        ",</1/0>",          /* leading separator */
        "</1/0>,,</2/0>",   /* empty link between */
        "</1/0>;",          /* empty attribute */
        "</1/0>;;a",        /* empty attribute name */
        "</1/0>;=x",        /* empty attribute name */
        "</1/0>;a=",        /* empty token value */
        "</1/0>;a=,</2>",   /* empty token value */
        "</1/0>;a=\"open",  /* unterminated quote */
        "</1/0>;a=\"x\\\"", /* escaped closing quote, then nothing */
        "</1/0>;a=\"x\\",   /* backslash at the end */
        "</1/0>;a=\"x\"y",  /* text after a quoted value */
        "</1/0>;a\"x\"",    /* quote inside a name */
        "</1/0>x",          /* text after > */
        "</1/0><2>",        /* missing separator */
        "</1 0>",           /* space in URI */
        "</1\"0>",          /* quote in URI */
        "</1<0>",           /* < in URI */
        "</%zz>",           /* bad percent-encoding */
        "</%4>",            /* short percent-encoding */
        "</%",              /* cut percent-encoding */
        "</a>;a b",         /* space in a name */
        "</a>;a=b c",       /* space in a token */
        "</a>;a=\"b\\",     /* cut escape */
        "</a>;a=\"\x01\"",  /* control character in a quoted value */
        "</a>;a=\"\x7f\"",  /* DEL in a quoted value */
        "</a>;a=x\\y",      /* backslash in a token */
        "</a>;\xc3\xa9=1",  /* non-ASCII name */
        "</\xc3\xa9>",      /* non-ASCII URI */
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        seen_t seen = {0};
        int rc = parse_exact(bad[i], &seen);
        if (rc != LWM2MD_ERR_INVALID) {
            print_error("accepted or wrong error for case %zu: %s\n", i, bad[i]);
        }
        assert_int_equal(rc, LWM2MD_ERR_INVALID);
        assert_int_equal(seen.count, 0);
    }
}

static void test_nul_byte_is_malformed(void **state)
{
    const char text[] = {'<', '/', '1', '>', ';', 'a', '=', '"', 'x', '\0', '"'};
    const char in_uri[] = {'<', '/', '\0', '>'};
    seen_t seen = {0};

    assert_int_equal(linkformat_parse(text, sizeof(text), collect, &seen), LWM2MD_ERR_INVALID);
    assert_int_equal(linkformat_parse(in_uri, sizeof(in_uri), collect, &seen), LWM2MD_ERR_INVALID);
    assert_int_equal(seen.count, 0);
}

static void test_attribute_bound(void **state)
{
    char text[256] = "</a>";
    for (int i = 0; i < LINKFORMAT_MAX_ATTRS; i++) {
        strcat(text, ";a");
    }
    seen_t seen = {0};
    assert_int_equal(parse_exact(text, &seen), 0);
    assert_int_equal(seen.attr_count[0], LINKFORMAT_MAX_ATTRS);

    strcat(text, ";b");
    seen = (seen_t){0};
    assert_int_equal(parse_exact(text, &seen), LWM2MD_ERR_TOO_BIG);
    assert_int_equal(seen.count, 0);
}

static void test_callback_stops(void **state)
{
    seen_t seen = {.stop_at = 2};
    assert_int_equal(parse_exact("</1>,</2>,</3>", &seen), 7);
    assert_int_equal(seen.count, 2);

    /* No callback: validation only. */
    assert_int_equal(linkformat_parse("</1>", 4, NULL, NULL), 0);
    assert_int_equal(linkformat_parse("</1", 3, NULL, NULL), LWM2MD_ERR_INVALID);
}

static void test_malformed_tail_reaches_no_callback(void **state)
{
    seen_t seen = {0};
    assert_int_equal(parse_exact("</1/0>,</2/0>,<bad", &seen), LWM2MD_ERR_INVALID);
    assert_int_equal(seen.count, 0);
}

/*
 * Whether text[0..cut) is complete link-format: outside any <...> and
 * quoted string, and not ending in a separator or "=". (The text used
 * here has no backslash escapes.)
 */
static bool prefix_is_complete(const char *text, size_t cut)
{
    bool in_uri = false;
    bool in_quote = false;

    for (size_t i = 0; i < cut; i++) {
        char ch = text[i];
        if (in_quote) {
            in_quote = ch != '"';
        } else if (in_uri) {
            in_uri = ch != '>';
        } else {
            in_quote = ch == '"';
            in_uri = ch == '<';
        }
    }
    char last = text[cut - 1];
    return !in_uri && !in_quote && last != ';' && last != ',' && last != '=';
}

static void test_every_truncation(void **state)
{
    const char *text = "</>;rt=\"oma.lwm2m\";ct=\"60 110\",</1/0>;x,</3>;ver=1.1,</3/0>";
    size_t len = strlen(text);
    size_t complete = 0;

    for (size_t cut = 1; cut < len; cut++) {
        char *copy = malloc(cut);
        assert_non_null(copy);
        memcpy(copy, text, cut);
        seen_t seen = {0};
        int rc = linkformat_parse(copy, cut, collect, &seen);
        free(copy);

        if (prefix_is_complete(text, cut)) {
            assert_int_equal(rc, 0);
            complete++;
        } else {
            assert_int_equal(rc, LWM2MD_ERR_INVALID);
            assert_int_equal(seen.count, 0);
        }
    }
    assert_true(complete > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_text),
        cmocka_unit_test(test_simple_links),
        cmocka_unit_test(test_attributes),
        cmocka_unit_test(test_find_attr),
        cmocka_unit_test(test_whitespace_after_separators),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_nul_byte_is_malformed),
        cmocka_unit_test(test_attribute_bound),
        cmocka_unit_test(test_callback_stops),
        cmocka_unit_test(test_malformed_tail_reaches_no_callback),
        cmocka_unit_test(test_every_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
