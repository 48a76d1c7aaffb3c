#!/usr/bin/env bash
# The registration interface over plain CoAP, driven by coap-client-notls.
. "$(dirname "$0")/lib.sh"

LINKS='</>;rt="oma.lwm2m";ct=11543,</1/0>,</3/0>,</5>;ver=1.1,</3303/0>'

lwm2md_cli device add sensor-1 --nosec >/dev/null || { echo "device add failed"; exit 1; }
lwm2md_cli device add meter-psk --psk meter-id:00112233445566778899aabbccddeeff >/dev/null
start_daemon || exit 1
BASE="coap://127.0.0.1:$COAP_PORT"

# Register: 2.01 with Location-Path rd/<id>.
coap post "$BASE/rd?ep=sensor-1&lt=300&lwm2m=1.1&b=U" -t 40 -e "$LINKS"
check "register answers 2.01" [ "$(coap_code)" = "2.01" ]
REG_ID=$(grep -oE 'Location-Path:[A-Za-z0-9]+' "$COAP_OUT" | sed -n '2s/Location-Path://p')
check "register gives Location-Path rd/<id>" grep -qE 'Location-Path:rd, Location-Path:[A-Za-z0-9]{12}' "$COAP_OUT"
check "registration is logged" wait_log "endpoint 'sensor-1': registered \\(id=$REG_ID"
check "device list shows the registration" listed "^sensor-1 .*$REG_ID.*127\\.0\\.0\\.1.*1\\.1"

# A second Register from the same endpoint replaces the first.
coap post "$BASE/rd?ep=sensor-1&lt=300&lwm2m=1.1" -t 40 -e "$LINKS"
NEW_ID=$(grep -oE 'Location-Path:[A-Za-z0-9]+' "$COAP_OUT" | sed -n '2s/Location-Path://p')
check "re-register answers 2.01 with a new id" [ "$(coap_code)" = "2.01" -a "$NEW_ID" != "$REG_ID" ]
check "re-register is logged as a replacement" wait_log "replaces $REG_ID"
coap post "$BASE/rd/$REG_ID?lt=300"
check "update of the replaced id is 4.04" [ "$(coap_code)" = "4.04" ]
REG_ID=$NEW_ID

# Update, with and without a new object list.
coap post "$BASE/rd/$REG_ID?lt=600"
check "update answers 2.04" [ "$(coap_code)" = "2.04" ]
coap post "$BASE/rd/$REG_ID" -t 40 -e '</1/0>,</3/0>,</6/0>'
check "update with an object list answers 2.04" [ "$(coap_code)" = "2.04" ]
check "update is logged" wait_log "endpoint 'sensor-1': registration updated \\(id=$REG_ID"
coap post "$BASE/rd/NoSuchId123?lt=60"
check "update of an unknown id is 4.04" [ "$(coap_code)" = "4.04" ]

# Refusals.
coap post "$BASE/rd?ep=stranger&lt=60" -t 40 -e "$LINKS"
check "unknown endpoint is 4.03" [ "$(coap_code)" = "4.03" ]
check "refusal is logged with the peer" \
    wait_log "warn .*endpoint 'stranger': registration refused \\(not provisioned\\) from 127\\.0\\.0\\.1:"
coap post "$BASE/rd?ep=meter-psk&lt=60" -t 40 -e "$LINKS"
check "PSK device on the NoSec port is 4.03" [ "$(coap_code)" = "4.03" ]
coap post "$BASE/rd?lt=60" -t 40 -e "$LINKS"
check "missing ep is 4.00" [ "$(coap_code)" = "4.00" ]
coap post "$BASE/rd?ep=&lt=60" -t 40 -e "$LINKS"
check "empty ep is 4.00" [ "$(coap_code)" = "4.00" ]
coap post "$BASE/rd?ep=sensor-1&lwm2m=9.9" -t 40 -e "$LINKS"
check "unsupported lwm2m version is 4.12" [ "$(coap_code)" = "4.12" ]
coap post "$BASE/rd?ep=sensor-1&lt=abc" -t 40 -e "$LINKS"
check "bad lifetime is 4.00" [ "$(coap_code)" = "4.00" ]
coap post "$BASE/rd?ep=sensor-1&b=X" -t 40 -e "$LINKS"
check "bad binding is 4.00" [ "$(coap_code)" = "4.00" ]
coap post "$BASE/rd?ep=sensor-1" -t 40 -e '</1/0>,<broken'
check "malformed link format is 4.00" [ "$(coap_code)" = "4.00" ]
coap post "$BASE/rd?ep=sensor-1" -t 50 -e '{}'
check "a payload that is not link-format is 4.15" [ "$(coap_code)" = "4.15" ]
coap get "$BASE/rd"
check "GET /rd is 4.05" [ "$(coap_code)" = "4.05" ]
coap put "$BASE/rd/$REG_ID"
check "PUT /rd/<id> is 4.05" [ "$(coap_code)" = "4.05" ]
coap get "$BASE/elsewhere"
check "unknown path is 4.04" [ "$(coap_code)" = "4.04" ]
coap post "$BASE/rd?ep=sensor-1&lwm2m=1.2" -t 40 -e "$LINKS"
check "lwm2m=1.2 is accepted" [ "$(coap_code)" = "2.01" ]
REG_ID=$(grep -oE 'Location-Path:[A-Za-z0-9]+' "$COAP_OUT" | sed -n '2s/Location-Path://p')

# De-register.
coap delete "$BASE/rd/$REG_ID"
check "de-register answers 2.02" [ "$(coap_code)" = "2.02" ]
check "de-registration is logged" wait_log "endpoint 'sensor-1': de-registered \\(id=$REG_ID\\)"
coap delete "$BASE/rd/$REG_ID"
check "second de-register is 4.04" [ "$(coap_code)" = "4.04" ]
check "device list shows it unregistered" listed '^sensor-1 +nosec +not registered'


finish
