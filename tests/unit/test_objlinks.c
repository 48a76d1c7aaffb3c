/* Tests of the registration object list parser (src/lwm2m/objlinks.c). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "base/error.h"
#include "lwm2m/objlinks.h"

/* The result lives on the heap: objlinks_t is about 8 KB. */
static int setup(void **state)
{
    *state = malloc(sizeof(objlinks_t));
    return *state != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

/* Parses a copy of exactly strlen(text) bytes, so ASan sees any over-read. */
static int parse_exact(const char *text, objlinks_t *out)
{
    size_t len = strlen(text);
    char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    memcpy(copy, text, len);
    int rc = objlinks_parse(copy, len, out);
    free(copy);
    return rc;
}

static void assert_link(const objlinks_t *out, size_t i, uint16_t object, int32_t instance,
                        const char *version)
{
    assert_true(i < out->count);
    assert_int_equal(out->links[i].object_id, object);
    assert_int_equal(out->links[i].instance_id, instance);
    assert_string_equal(out->links[i].version, version);
}

static void test_plain_list(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</1/0>,</3/0>", out), 0);
    assert_string_equal(out->root, "");
    assert_int_equal(out->content_type_count, 0);
    assert_int_equal(out->count, 2);
    assert_link(out, 0, 1, 0, "");
    assert_link(out, 1, 3, 0, "");
}

static void test_root_with_content_type_and_versions(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</>;rt=\"oma.lwm2m\";ct=11543,</1/0>,</3>;ver=1.1,</3/0>", out),
                     0);
    assert_string_equal(out->root, "");
    assert_int_equal(out->content_type_count, 1);
    assert_int_equal(out->content_types[0], 11543);
    assert_int_equal(out->count, 3);
    assert_link(out, 0, 1, 0, "");
    assert_link(out, 1, 3, -1, "1.1");
    assert_link(out, 2, 3, 0, "");
}

static void test_alternate_root(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</lwm2m/3/0>", out), 0);
    assert_string_equal(out->root, "/lwm2m");
    assert_int_equal(out->count, 2);
    assert_link(out, 0, 1, 0, "");
    assert_link(out, 1, 3, 0, "");

    /* Deeper roots, a trailing slash, and the root link last. */
    assert_int_equal(parse_exact("</a/b-c_d/>;rt=\"oma.lwm2m\",</a/b-c_d/5>", out), 0);
    assert_string_equal(out->root, "/a/b-c_d");
    assert_link(out, 0, 5, -1, "");
    assert_int_equal(parse_exact("</dm/1/0>,</dm>;rt=\"oma.lwm2m other\"", out), 0);
    assert_string_equal(out->root, "/dm");
    assert_int_equal(out->count, 1);
}

static void test_lwm2m_1_0_root_without_rt(void **state)
{
    objlinks_t *out = *state;

    /* LwM2M 1.0 marks the root "</>" with ct= only, and spaces after ",". */
    assert_int_equal(parse_exact("</>;ct=110, </1/0>,</1/1>,</2/0>, </5>", out), 0);
    assert_int_equal(out->content_type_count, 1);
    assert_int_equal(out->content_types[0], 110);
    assert_int_equal(out->count, 4);
    assert_link(out, 3, 5, -1, "");

    assert_int_equal(parse_exact("</>", out), 0);
    assert_int_equal(out->count, 0);
}

static void test_content_type_lists(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</>;rt=\"oma.lwm2m\";ct=\"60 110 112 11542 11543\",</3/0>", out),
                     0);
    assert_int_equal(out->content_type_count, 5);
    assert_int_equal(out->content_types[0], 60);
    assert_int_equal(out->content_types[4], 11543);

    /* More than the table holds: the first eight are kept. */
    assert_int_equal(parse_exact("</>;ct=\"0 40 42 60 110 112 320 322 11542 11543\"", out), 0);
    assert_int_equal(out->content_type_count, 8);
    assert_int_equal(out->content_types[7], 322);

    static const char *const bad[] = {
        "</>;ct=abc",    "</>;ct=70000",  "</>;ct=\"\"",   "</>;ct",    "</>;ct=\"1  2\"",
        "</>;ct=\" 1\"", "</>;ct=\"1 \"", "</>;ct=011543", "</>;ct=-1", "</>;ct=1.5",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse_exact(bad[i], out), LWM2MD_ERR_INVALID);
    }
}

static void test_id_ranges(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</0>,</65535>,</3/65534>,</10241/0>", out), 0);
    assert_link(out, 0, 0, -1, "");
    assert_link(out, 1, 65535, -1, "");
    assert_link(out, 2, 3, 65534, "");
    assert_link(out, 3, 10241, 0, "");

    static const char *const bad[] = {
        "</65536>", "</3/65535>", "</100000>", "</03/0>",    "</3/00>", "</-1>",
        "</a/0>",   "</3/a>",     "</3/>",     "</3//0>",    "<3/0>",   "</ 3>",
        "</3?x=1>", "</3#0>",     "</3/0/1>",  "</3/0/1/2>", "</3/0/>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_exact(bad[i], out) != LWM2MD_ERR_INVALID) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
    }
}

static void test_links_outside_root_are_refused(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</lwm2m>;rt=\"oma.lwm2m\",</lwm2m/1/0>,</3/0>", out),
                     LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact("</lwm2m>;rt=\"oma.lwm2m\",</lwm2mx/3/0>", out),
                     LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact("</lwm2m>;rt=\"oma.lwm2m\",</lwm2m>", out), LWM2MD_ERR_INVALID);
    assert_int_equal(parse_exact("</lwm2m>;rt=\"oma.lwm2m\",</>", out), LWM2MD_ERR_INVALID);
}

static void test_bad_roots(void **state)
{
    objlinks_t *out = *state;
    char long_root[128];

    static const char *const bad[] = {
        "</a>;rt=\"oma.lwm2m\",</b>;rt=\"oma.lwm2m\"", /* two roots */
        "</>,</a>;rt=\"oma.lwm2m\"",                   /* two roots */
        "<a>;rt=\"oma.lwm2m\"",                        /* relative */
        "<>;rt=\"oma.lwm2m\"",                         /* empty */
        "</a//b>;rt=\"oma.lwm2m\"",                    /* empty segment */
        "<//>;rt=\"oma.lwm2m\"",                       /* empty segment */
        "</..>;rt=\"oma.lwm2m\"",                      /* dot segment */
        "</a/./b>;rt=\"oma.lwm2m\"",                   /* dot segment */
        "</a?b>;rt=\"oma.lwm2m\"",                     /* query */
        "</a%20b>;rt=\"oma.lwm2m\"",                   /* encoded */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_exact(bad[i], out) != LWM2MD_ERR_INVALID) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
    }

    /* A root of OBJLINKS_ROOT_MAX characters fits; one more does not. */
    memset(long_root, 'r', sizeof(long_root));
    long_root[0] = '/';
    snprintf(long_root + OBJLINKS_ROOT_MAX, sizeof(long_root) - OBJLINKS_ROOT_MAX,
             ">;rt=\"oma.lwm2m\"");
    char text[160];
    snprintf(text, sizeof(text), "<%s", long_root);
    assert_int_equal(parse_exact(text, out), 0);
    assert_int_equal(strlen(out->root), OBJLINKS_ROOT_MAX);

    long_root[OBJLINKS_ROOT_MAX] = 'r';
    snprintf(long_root + OBJLINKS_ROOT_MAX + 1, sizeof(long_root) - OBJLINKS_ROOT_MAX - 1,
             ">;rt=\"oma.lwm2m\"");
    snprintf(text, sizeof(text), "<%s", long_root);
    assert_int_equal(parse_exact(text, out), LWM2MD_ERR_TOO_BIG);
}

static void test_versions(void **state)
{
    objlinks_t *out = *state;

    assert_int_equal(parse_exact("</3>;ver=\"1.2\",</5>;ver=10.0,</6>;ver=123.456", out), 0);
    assert_link(out, 0, 3, -1, "1.2");
    assert_link(out, 1, 5, -1, "10.0");
    assert_link(out, 2, 6, -1, "123.456");

    static const char *const bad[] = {
        "</3>;ver",     "</3>;ver=1",    "</3>;ver=1.",       "</3>;ver=.1",  "</3>;ver=1.1.1",
        "</3>;ver=a.b", "</3>;ver=\"\"", "</3>;ver=1234.567", "</3>;ver=1,1", "</3>;ver=\"1 .1\"",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_exact(bad[i], out) != LWM2MD_ERR_INVALID) {
            print_error("accepted: %s\n", bad[i]);
            fail();
        }
    }

    /* Other attributes on object links are ignored. */
    assert_int_equal(parse_exact("</3/0>;foo=bar;obs", out), 0);
    assert_link(out, 0, 3, 0, "");
}

/* Builds "</0/0>,</0/1>,..." with n links into a heap string. */
static char *many_links(size_t n)
{
    char *text = malloc(n * 14 + 1);
    assert_non_null(text);
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        len += (size_t)sprintf(text + len, "%s</%zu/%zu>", i > 0 ? "," : "", i / 100, i % 100);
    }
    return text;
}

static void test_link_count_bound(void **state)
{
    objlinks_t *out = *state;

    char *text = many_links(OBJLINKS_MAX);
    assert_int_equal(parse_exact(text, out), 0);
    assert_int_equal(out->count, OBJLINKS_MAX);
    assert_link(out, OBJLINKS_MAX - 1, (OBJLINKS_MAX - 1) / 100, (OBJLINKS_MAX - 1) % 100, "");
    free(text);

    text = many_links(OBJLINKS_MAX + 1);
    assert_int_equal(parse_exact(text, out), LWM2MD_ERR_TOO_BIG);
    assert_int_equal(out->count, 0);
    free(text);
}

static void test_error_leaves_result_empty(void **state)
{
    objlinks_t *out = *state;

    memset(out, 0x5a, sizeof(*out));
    assert_int_equal(
        parse_exact("</lwm2m>;rt=\"oma.lwm2m\";ct=40,</lwm2m/1/0>,</lwm2m/3/0/1>", out),
        LWM2MD_ERR_INVALID);
    assert_int_equal(out->count, 0);
    assert_int_equal(out->content_type_count, 0);
    assert_string_equal(out->root, "");

    /* Malformed link format is refused before any link is read. */
    assert_int_equal(parse_exact("</1/0>,</3/0", out), LWM2MD_ERR_INVALID);
    assert_int_equal(out->count, 0);
    assert_int_equal(parse_exact("</1/0>;ver=\"1.0", out), LWM2MD_ERR_INVALID);

    /* An empty payload lists nothing and is not malformed. */
    assert_int_equal(objlinks_parse("", 0, out), 0);
    assert_int_equal(out->count, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_plain_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_with_content_type_and_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alternate_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lwm2m_1_0_root_without_rt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_content_type_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_ranges, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_outside_root_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_roots, setup, teardown),
        cmocka_unit_test_setup_teardown(test_versions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_count_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_leaves_result_empty, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
