/*
 * libFuzzer target for the DTLS record readers that run before GnuTLS
 * sees a datagram: dtls_datagram_scan() and dtls_client_hello_wants_rpk(),
 * on the input as a datagram and on the input wrapped as the body of a
 * well-framed ClientHello, with the invariants their contracts imply.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dtls/record.h"

/* Trap rather than report: libFuzzer records the input that failed. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

enum {
    RECORD_HEADER = 13,    /* RFC 6347 4.1: type, version, epoch, sequence number, length */
    HANDSHAKE_HEADER = 12, /* RFC 6347 4.2.2: type, length, message_seq, fragment offset, length */
    CONTENT_HANDSHAKE = 22,
    CONTENT_APPLICATION_DATA = 23,
    CLIENT_HELLO = 1,
    /* client_version, random, and the session_id and cookie length bytes */
    CLIENT_HELLO_FIXED = 2 + 32 + 1 + 1,
    /*
     * The least a ClientHello asking for RPK holds after the handshake header: the fixed
     * fields, the cipher_suites, compression and extensions length prefixes, and two
     * certificate type extensions of one type each (RFC 7250 3).
     */
    RPK_HELLO_MIN = RECORD_HEADER + HANDSHAKE_HEADER + CLIENT_HELLO_FIXED + 2 + 1 + 2 + 2 * 6,
};

/* An exact heap copy, so that any read past the end trips ASan. */
static uint8_t *copy_exact(const uint8_t *data, size_t size, size_t room)
{
    uint8_t *copy = malloc(size + room > 0 ? size + room : 1);
    CHECK(copy != NULL);
    if (size > 0) {
        memcpy(copy, data, size);
    }
    return copy;
}

static void put_u16(uint8_t *p, size_t value)
{
    p[0] = (uint8_t)(value >> 8);
    p[1] = (uint8_t)value;
}

static void put_u24(uint8_t *p, size_t value)
{
    p[0] = (uint8_t)(value >> 16);
    p[1] = (uint8_t)(value >> 8);
    p[2] = (uint8_t)value;
}

/* A DTLS 1.2 record header: version {254, 253}, sequence number 0. */
static void put_record_header(uint8_t *p, uint8_t type, uint16_t epoch, size_t body_len)
{
    memset(p, 0, RECORD_HEADER);
    p[0] = type;
    p[1] = 254;
    p[2] = 253;
    put_u16(p + 3, epoch);
    put_u16(p + 11, body_len);
}

static bool same_info(const dtls_datagram_info_t *a, const dtls_datagram_info_t *b)
{
    return a->valid == b->valid && a->client_hello == b->client_hello &&
           a->handshake == b->handshake && a->alert == b->alert &&
           a->application_data == b->application_data &&
           a->change_cipher_spec == b->change_cipher_spec && a->encrypted == b->encrypted;
}

/* What any scan result must satisfy, whatever the bytes. */
static void check_flags(const uint8_t *data, size_t len, const dtls_datagram_info_t *info)
{
    if (len == 0) {
        dtls_datagram_info_t none;
        memset(&none, 0, sizeof(none));
        CHECK(same_info(info, &none));
    }
    CHECK(!info->change_cipher_spec || info->handshake);
    CHECK(!info->valid || info->handshake || info->alert || info->application_data);

    /* A ClientHello starts the datagram: an epoch-0 handshake record with room for its fields. */
    if (info->client_hello) {
        CHECK(info->handshake);
        CHECK(len >= RECORD_HEADER + HANDSHAKE_HEADER + CLIENT_HELLO_FIXED);
        CHECK(data[0] == CONTENT_HANDSHAKE && data[1] == 254 && data[3] == 0 && data[4] == 0);
        CHECK(data[RECORD_HEADER] == CLIENT_HELLO);
    }
}

/* The length of the record at pos, header included (the datagram is valid). */
static size_t record_size(const uint8_t *data, size_t pos)
{
    return RECORD_HEADER + (((size_t)data[pos + 11] << 8) | data[pos + 12]);
}

/* OR of the flags of each record scanned alone; each record alone is a valid datagram. */
static void scan_records(const uint8_t *data, size_t len, dtls_datagram_info_t *merged)
{
    memset(merged, 0, sizeof(*merged));
    for (size_t pos = 0; pos < len;) {
        size_t size = record_size(data, pos);
        CHECK(size <= len - pos);
        uint8_t *alone = copy_exact(data + pos, size, 0);
        dtls_datagram_info_t one;
        dtls_datagram_scan(alone, size, &one);
        CHECK(one.valid);
        merged->client_hello = pos == 0 ? one.client_hello : merged->client_hello;
        merged->handshake |= one.handshake;
        merged->alert |= one.alert;
        merged->application_data |= one.application_data;
        merged->change_cipher_spec |= one.change_cipher_spec;
        merged->encrypted |= one.encrypted;
        free(alone);
        pos += size;
    }
    merged->valid = true;
}

/* A valid datagram: its records are valid alone, and it stops being valid when cut or padded. */
static void check_valid_datagram(const uint8_t *data, size_t len, const dtls_datagram_info_t *info)
{
    dtls_datagram_info_t merged;
    scan_records(data, len, &merged);
    CHECK(same_info(info, &merged));

    /* One byte short: the last record runs past the end. */
    dtls_datagram_info_t cut;
    dtls_datagram_scan(data, len - 1, &cut);
    CHECK(!cut.valid);

    /* One stray byte after the last record is no record header. */
    uint8_t *longer = copy_exact(data, len, RECORD_HEADER);
    longer[len] = data[0];
    dtls_datagram_info_t padded;
    dtls_datagram_scan(longer, len + 1, &padded);
    CHECK(!padded.valid);

    /* An empty epoch-1 application-data record appended adds exactly its own flags. */
    put_record_header(longer + len, CONTENT_APPLICATION_DATA, 1, 0);
    dtls_datagram_info_t appended;
    dtls_datagram_scan(longer, len + RECORD_HEADER, &appended);
    dtls_datagram_info_t expected = *info;
    expected.application_data = true;
    expected.encrypted = true;
    CHECK(same_info(&appended, &expected));
    free(longer);
}

/* The extension reader stays inside the ClientHello and needs room for two extensions. */
static void check_wants_rpk(const uint8_t *data, size_t len, const dtls_datagram_info_t *info)
{
    bool rpk = dtls_client_hello_wants_rpk(data, len);
    CHECK(rpk == dtls_client_hello_wants_rpk(data, len));
    CHECK(!rpk || len >= RPK_HELLO_MIN);
    if (info->client_hello) {
        size_t first = record_size(data, 0);
        CHECK(first <= len);
        CHECK(rpk == dtls_client_hello_wants_rpk(data, first));
    }
}

static void check_datagram(const uint8_t *data, size_t len)
{
    dtls_datagram_info_t info;
    dtls_datagram_scan(data, len, &info);
    dtls_datagram_info_t again;
    dtls_datagram_scan(data, len, &again);
    CHECK(same_info(&info, &again));

    check_flags(data, len, &info);
    if (info.valid) {
        check_valid_datagram(data, len, &info);
    }
    check_wants_rpk(data, len, &info);
}

/*
 * The input as the body of an unfragmented epoch-0 ClientHello in one
 * record, so that mutations reach the extension reader directly.
 */
static void check_wrapped_hello(const uint8_t *body, size_t size)
{
    if (size > 0xffff - HANDSHAKE_HEADER) {
        return;
    }
    size_t len = RECORD_HEADER + HANDSHAKE_HEADER + size;
    uint8_t *hello = malloc(len);
    CHECK(hello != NULL);
    put_record_header(hello, CONTENT_HANDSHAKE, 0, HANDSHAKE_HEADER + size);
    uint8_t *handshake = hello + RECORD_HEADER;
    memset(handshake, 0, HANDSHAKE_HEADER);
    handshake[0] = CLIENT_HELLO;
    put_u24(handshake + 1, size);
    put_u24(handshake + 9, size);
    if (size > 0) {
        memcpy(handshake + HANDSHAKE_HEADER, body, size);
    }

    dtls_datagram_info_t info;
    dtls_datagram_scan(hello, len, &info);
    CHECK(info.valid && info.handshake && !info.encrypted && !info.application_data);
    CHECK(info.client_hello == (size >= CLIENT_HELLO_FIXED));
    check_datagram(hello, len);
    free(hello);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *datagram = copy_exact(data, size, 0);
    check_datagram(datagram, size);
    free(datagram);

    check_wrapped_hello(data, size);
    return 0;
}
