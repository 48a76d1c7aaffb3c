#!/usr/bin/env bash
# Lifetime expiry, restarts, provisioning while running, block-wise and bad datagrams.
. "$(dirname "$0")/lib.sh"

LINKS='</1/0>,</3/0>'
reg_id() {
    grep -oE 'Location-Path:[A-Za-z0-9]+' "$COAP_OUT" | sed -n '2s/Location-Path://p'
}

lwm2md_cli device add tracker-1 --nosec >/dev/null
lwm2md_cli device add tracker-2 --nosec >/dev/null
start_daemon LWM2MD_COAP_MAX_BODY_SIZE=2048 || exit 1
BASE="coap://127.0.0.1:$COAP_PORT"

# Lifetime: a registration not updated in time is removed and logged.
coap post "$BASE/rd?ep=tracker-2&lt=1" -t 40 -e "$LINKS"
check "short-lived register answers 2.01" [ "$(coap_code)" = "2.01" ]
check "expiry is logged" wait_log "endpoint 'tracker-2': registration expired" 10
coap post "$BASE/rd/$(reg_id)"
check "update after expiry is 4.04" [ "$(coap_code)" = "4.04" ]

# Block-wise Register (Block1, 64-byte blocks): the whole object list arrives.
BIG='</>;rt="oma.lwm2m"'
for i in $(seq 1 60); do BIG="$BIG,</$((3300 + i))/0>"; done
coap post "$BASE/rd?ep=tracker-1&lt=600&lwm2m=1.1" -t 40 -b 64 -e "$BIG"
check "block-wise register answers 2.01" [ "$(coap_code)" = "2.01" ]
check "block-wise register was sent in blocks" grep -qE 'Block1:0/M/64' "$COAP_OUT"
check "all 60 objects arrived" wait_log "endpoint 'tracker-1': registered .*objects=60\\)"
KEEP_ID=$(reg_id)

# Over the body limit: 4.13, with and without blocks.
HUGE=$(printf '</%d/0>,' $(seq 1000 1400))
coap post "$BASE/rd?ep=tracker-2" -t 40 -b 256 -e "${HUGE%,}"
check "block-wise body over the limit is 4.13" [ "$(coap_code)" = "4.13" ]

# Malformed datagrams are dropped or reset, then the server goes on.
printf '\x49\x02\x00\x01garbage' >/dev/udp/127.0.0.1/"$COAP_PORT"
printf '\xff\xff\xff' >/dev/udp/127.0.0.1/"$COAP_PORT"
printf '\x40\x02\x00\x02\xd1' >/dev/udp/127.0.0.1/"$COAP_PORT"
head -c 1500 /dev/urandom >/dev/udp/127.0.0.1/"$COAP_PORT"
printf '\x40\x01\x00\x01\xd1\x0a\x10' >/dev/udp/127.0.0.1/"$COAP_PORT"   # Block2 past an empty answer
printf '\x40\x01\x00\x39\xd0\x0e' >/dev/udp/127.0.0.1/"$COAP_PORT"       # empty Block1
coap post "$BASE/rd?ep=tracker-2&lt=600" -t 40 -e "$LINKS"
check "register after malformed datagrams answers 2.01" [ "$(coap_code)" = "2.01" ]

# Provisioning while the server runs: no restart needed.
coap post "$BASE/rd?ep=late-comer&lt=600" -t 40 -e "$LINKS"
check "unprovisioned endpoint is 4.03" [ "$(coap_code)" = "4.03" ]
lwm2md_cli device add late-comer --nosec >/dev/null
for i in $(seq 1 20); do    # the server looks at the store once a second
    sleep 0.5
    coap post "$BASE/rd?ep=late-comer&lt=600" -t 40 -e "$LINKS"
    [ "$(coap_code)" = "2.01" ] && break
done
check "endpoint added while running may register" [ "$(coap_code)" = "2.01" ]
lwm2md_cli device remove late-comer >/dev/null
check "removing a registered device ends its registration" \
    wait_log "endpoint 'late-comer': registration removed \\(device removed\\)"

# Restart: the registration survives, with its id.
stop_daemon
start_daemon || exit 1
BASE="coap://127.0.0.1:$COAP_PORT"
check "registrations are restored" wait_log "registrations restored from the store"
check "device list still shows tracker-1 registered" listed "^tracker-1 .*$KEEP_ID"
coap post "$BASE/rd/$KEEP_ID?lt=600"
check "update after a restart answers 2.04" [ "$(coap_code)" = "2.04" ]

# IPv6: the same listener on ::1.
stop_daemon
start_daemon LWM2M_BIND_ADDRESS=::1 LWM2M_SECURITY_BIND_ADDRESS=::1 || exit 1
coap post "coap://[::1]:$COAP_PORT/rd?ep=tracker-2&lt=600" -t 40 -e "$LINKS"
check "register over IPv6 answers 2.01" [ "$(coap_code)" = "2.01" ]
check "IPv6 peer is logged" wait_log "endpoint 'tracker-2': registered .*peer=\\[::1\\]:"

finish
