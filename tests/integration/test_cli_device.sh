#!/usr/bin/env bash
# `lwm2md device add|list|show|remove` end to end, against a temporary data directory.
# Registrations are written with the sqlite3 shell, as a running server would have stored them.
set -euo pipefail

: "${LWM2MD:?LWM2MD must name the lwm2md binary}"
command -v sqlite3 >/dev/null || { echo "FAIL: the sqlite3 shell is needed" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl is needed" >&2; exit 1; }

WORK=$(mktemp -d /tmp/lwm2md-cli-device.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
export LWM2MD_DATA_DIR="$WORK/data"
DB="$LWM2MD_DATA_DIR/lwm2md.db"
PSK_HEX=00112233445566778899aabbccddeeff

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# run EXIT_CODE ARGS...: runs lwm2md, checks the exit code, keeps OUT and ERR.
run() {
    local expected=$1
    shift
    local code=0
    "$LWM2MD" "$@" >"$WORK/out" 2>"$WORK/err" || code=$?
    OUT=$(cat "$WORK/out")
    ERR=$(cat "$WORK/err")
    if [ "$code" != "$expected" ]; then
        fail "lwm2md $*: exit $code, expected $expected
stdout: $OUT
stderr: $ERR"
    fi
    if grep -qi "$PSK_HEX" "$WORK/out" "$WORK/err"; then
        fail "lwm2md $*: printed the PSK key"
    fi
}

# usage ARGS...: a usage error is exit 2 with one line on stderr and nothing on stdout.
usage() {
    run 2 "$@"
    [ -z "$OUT" ] || fail "lwm2md $*: usage error wrote to stdout: $OUT"
    [ "$(wc -l <"$WORK/err")" = 1 ] || fail "lwm2md $*: usage error is not one line: $ERR"
}

has_out() {
    grep -qxF -- "$1" <<<"$OUT" || fail "stdout lacks the line '$1':
$OUT"
}

has_err() {
    grep -qF -- "$1" <<<"$ERR" || fail "stderr lacks '$1':
$ERR"
}

# ---- help ----
run 0 device --help
has_out "Usage: lwm2md device COMMAND [ARGUMENTS]"
for sub in add list show remove; do
    run 0 device "$sub" --help
    grep -q "^Usage: lwm2md device $sub" <<<"$OUT" || fail "device $sub --help: $OUT"
done
[ ! -e "$LWM2MD_DATA_DIR" ] || fail "--help created the data directory"

# ---- usage errors ----
usage device
usage device frobnicate
usage device add
usage device add ep1
usage device add ep1 --nosec --psk id:00
usage device add ep1 --nosec --bogus
usage device add ep1 --psk
usage device add ep1 --nosec=yes
usage device add ep1 --nosec --nosec
usage device add ep1 --cert /dev/null --nosec
usage device add ep1 ep2 --nosec
usage device add ep1 --psk nocolon
usage device add ep1 --psk id:abc
usage device add ep1 --psk id:zz
usage device add ep1 --psk id:
usage device add ep1 --psk :0011
usage device add ep1 --psk "id:$(printf '%0130d' 0)"
usage device add "" --nosec
usage device add "$(printf 'e%.0s' $(seq 257))" --nosec
usage device add "$(printf 'bad\tname')" --nosec
usage device show
usage device remove
usage device list extra
has_err "unexpected argument 'extra'"

# ---- add ----
run 0 device add sensor-2 --psk "psk-id:with:colons:$PSK_HEX" --name "Boiler room"
has_out "device 'sensor-2' added (psk)"
[ "$(stat -c %a "$LWM2MD_DATA_DIR")" = 700 ] || fail "data dir mode is not 0700"
[ "$(stat -c %a "$DB")" = 600 ] || fail "database mode is not 0600"

run 0 device add sensor-1 --nosec
run 0 device add --nosec -- -dash-endpoint
run 0 device add sensor-max --psk "max-id:$(printf 'ab%.0s' $(seq 64))"

openssl ecparam -name prime256v1 -genkey -noout -out "$WORK/key.pem" 2>/dev/null
openssl ec -in "$WORK/key.pem" -pubout -out "$WORK/pub.pem" 2>/dev/null
openssl req -x509 -new -key "$WORK/key.pem" -subj /CN=x509-pinned -days 2 \
    -out "$WORK/cert.pem" 2>/dev/null
RPK_SHA=$(openssl pkey -pubin -in "$WORK/pub.pem" -outform DER | sha256sum | cut -d' ' -f1)
CERT_SHA=$(openssl x509 -in "$WORK/cert.pem" -outform DER | sha256sum | cut -d' ' -f1)

run 0 device add rpk-1 --rpk "$WORK/pub.pem"
has_out "device 'rpk-1' added (rpk)"
run 0 device add x509-pinned --x509 --cert "$WORK/cert.pem"
run 0 device add x509-ca --x509

# Refusals: one line on stderr, exit 1, nothing stored.
run 1 device add sensor-1 --nosec
has_err "lwm2md: device 'sensor-1': already exists"
run 1 device add other --psk "psk-id:with:colons:0102"
has_err "lwm2md: device 'other': PSK identity 'psk-id:with:colons' is already used by device 'sensor-2'"
run 1 device add rpk-2 --rpk "$WORK/pub.pem"
has_err "lwm2md: device 'rpk-2': this public key is already used by device 'rpk-1'"
run 1 device add x509-again --x509 --cert "$WORK/cert.pem"
has_err "already pinned for device 'x509-pinned'"
run 1 device add rpk-3 --rpk "$WORK/missing.pem"
has_err "lwm2md: device 'rpk-3':"
run 1 device show other
run 1 device show rpk-2

# ---- list ----
run 0 device list
[ "$(wc -l <<<"$OUT")" = 7 ] || fail "list: expected 7 lines:
$OUT"
has_out "-dash-endpoint  nosec  not registered"
has_out "sensor-1        nosec  not registered"
has_out "sensor-2        psk    not registered"
has_out "x509-ca         x509   not registered"
has_out "rpk-1           rpk    not registered"

# ---- registrations, as the server stores them ----
NOW=$(date +%s)
sqlite3 "$DB" "INSERT INTO registrations (id, endpoint, peer, secure, version, binding, sms,
    queue_mode, lifetime, registered_at, updated_at, expires_at, links) VALUES
    ('AbC123', 'sensor-1', '127.0.0.1:5683', 0, '1.1', 'U', '', 0, 86400, $NOW, $NOW,
     $((NOW + 86400)), '</1/0>,</3/0>'),
    ('Old999', 'sensor-2', '127.0.0.1:5690', 1, '1.0', 'UQ', '', 1, 60, $((NOW - 600)),
     $((NOW - 600)), $((NOW - 540)), '</3/0>'),
    ('Zz0001', 'stranger', '[::1]:40000', 0, '1.2', 'U', '', 0, 300, $NOW, $NOW,
     $((NOW + 300)), '</3/0>');"

run 0 device list
[ "$(wc -l <<<"$OUT")" = 8 ] || fail "list: expected 8 lines:
$OUT"
grep -qE '^sensor-1        nosec  registered id=AbC123 peer=127\.0\.0\.1:5683 left=(86[34][0-9][0-9])s lwm2m=1\.1$' \
    <<<"$OUT" || fail "list: sensor-1 line:
$OUT"
has_out "sensor-2        psk    not registered"
grep -qE '^stranger        nosec  registered id=Zz0001 peer=\[::1\]:40000 left=[23][0-9][0-9]s lwm2m=1\.2  \(unprovisioned\)$' \
    <<<"$OUT" || fail "list: unprovisioned line:
$OUT"
# Endpoint order, unprovisioned ones included.
[ "$(cut -d' ' -f1 <<<"$OUT" | tr '\n' ,)" = \
    "-dash-endpoint,rpk-1,sensor-1,sensor-2,sensor-max,stranger,x509-ca,x509-pinned," ] ||
    fail "list order:
$OUT"

# ---- show ----
run 0 device show sensor-1
has_out "endpoint: sensor-1"
has_out "name: -"
has_out "security: nosec"
has_out "registration: AbC123"
has_out "peer: 127.0.0.1:5683"
has_out "transport: udp"
has_out "lwm2m version: 1.1"
has_out "binding: U"
has_out "queue mode: no"
has_out "lifetime: 86400s"
has_out "registered at: $(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)"
has_out "updated at: $(date -u -d "@$NOW" +%Y-%m-%dT%H:%M:%SZ)"
has_out "object links: </1/0>,</3/0>"

run 0 device show sensor-2
has_out "name: Boiler room"
has_out "security: psk"
has_out "psk identity: psk-id:with:colons"
has_out "psk key: <16 bytes>"
grep -q "^registration: none (the last one expired at " <<<"$OUT" || fail "show expired: $OUT"

run 0 device show rpk-1
has_out "security: rpk"
has_out "rpk sha256: $RPK_SHA"
has_out "registration: none"

run 0 device show x509-pinned
has_out "certificate sha256: $CERT_SHA"
run 0 device show x509-ca
has_out "certificate: any from a trusted CA with CN = endpoint"

run 0 device show stranger
has_out "security: nosec (unprovisioned)"
has_out "registration: Zz0001"

run 1 device show nobody
[ "$ERR" = "lwm2md: device 'nobody': not found" ] || fail "show nobody: $ERR"

# ---- remove ----
run 0 device remove sensor-1
has_out "device 'sensor-1' removed"
run 1 device remove sensor-1
[ "$ERR" = "lwm2md: device 'sensor-1': not found" ] || fail "remove twice: $ERR"
[ "$(sqlite3 "$DB" "SELECT count(*) FROM registrations WHERE endpoint = 'sensor-1'")" = 0 ] ||
    fail "remove left the registration"
run 1 device remove stranger
run 1 device show sensor-1

# The endpoint and the PSK identity are free again.
run 0 device add sensor-1 --psk "fresh-id:$PSK_HEX"
run 0 device remove sensor-2
run 0 device add sensor-3 --psk "psk-id:with:colons:$PSK_HEX"

run 0 device list
[ "$(wc -l <<<"$OUT")" = 8 ] || fail "final list:
$OUT"
has_out "sensor-1        psk    not registered"
has_out "sensor-3        psk    not registered"

# The key is stored, never shown.
[ "$(sqlite3 "$DB" "SELECT hex(psk_key) FROM devices WHERE endpoint = 'sensor-3'")" = \
    "${PSK_HEX^^}" ] || fail "stored key differs"

echo "PASS"
