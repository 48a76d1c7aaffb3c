#!/usr/bin/env bash
# `lwm2md certs generate` end to end: the files, what openssl reads in them, their modes,
# refusal to overwrite, and a daemon that starts with the generated server credentials.
set -uo pipefail

. "$(dirname "$0")/lib.sh"
command -v openssl >/dev/null || { echo "FAIL: openssl is needed" >&2; exit 1; }

OUT="$TEST_DIR/certs"
ENDPOINT="urn:imei:490154203237518"

# run_cli EXIT_CODE ARGS...: runs lwm2md, keeps stdout/stderr in $CLI_OUT/$CLI_ERR.
run_cli() {
    local expected=$1 code=0
    shift
    "$LWM2MD" "$@" >"$TEST_DIR/cli.out" 2>"$TEST_DIR/cli.err" || code=$?
    CLI_OUT=$(cat "$TEST_DIR/cli.out")
    CLI_ERR=$(cat "$TEST_DIR/cli.err")
    if [ "$code" != "$expected" ]; then
        echo "lwm2md $*: exit $code, expected $expected; stderr: $CLI_ERR"
        return 1
    fi
}

# A usage error: exit 2, one line on stderr, nothing on stdout.
usage_error() {
    run_cli 2 "$@" && [ -z "$CLI_OUT" ] && [ "$(wc -l <"$TEST_DIR/cli.err")" = 1 ]
}

mode_of() { stat -c %a "$1"; }

subject_cn() {
    openssl x509 -in "$1" -noout -subject -nameopt multiline | sed -n 's/^ *commonName *= //p'
}

# The public key of a private key file, or of a public key file, as PEM.
public_of() { openssl pkey -in "$1" -pubout; }
public_in() { openssl pkey -pubin -in "$1"; }

# ---- help and usage errors ----
check "certs --help exits 0" run_cli 0 certs --help
check "certs generate --help describes the files" \
    bash -c 'run() { "$LWM2MD" certs generate --help; }; run | grep -q "server_chain.pem"'
check "certs without a command is a usage error" usage_error certs
check "certs with an unknown command is a usage error" usage_error certs frobnicate
check "generate without --out is a usage error" usage_error certs generate
check "an unknown option is a usage error" usage_error certs generate --out "$OUT" --colour
check "--days 0 is a usage error" usage_error certs generate --out "$OUT" --days 0
check "--days abc is a usage error" usage_error certs generate --out "$OUT" --days abc
check "an endpoint with '/' is a usage error" usage_error certs generate --out "$OUT" --client a/b
check "a client whose files collide is a usage error" \
    usage_error certs generate --out "$OUT" --client server
check "a bad server name is a usage error" \
    usage_error certs generate --out "$OUT" --server-name "bad name"
check "usage errors create nothing" test ! -e "$OUT"

# ---- generate ----
check "generate succeeds" run_cli 0 certs generate --out "$OUT" --server-name lwm2m.example.com \
    --client dev-1 --client "$ENDPOINT" --days 30
check "generate lists the files it wrote" grep -qxF "$OUT/server_chain.pem" "$TEST_DIR/cli.out"
for f in ca.pem ca_key.pem server.pem server_key.pem server_chain.pem server_rpk_pub.pem \
    dev-1.pem dev-1_key.pem dev-1_rpk_key.pem dev-1_rpk_pub.pem "$ENDPOINT.pem"; do
    check "$f exists" test -s "$OUT/$f"
done

check "the directory is mode 700" test "$(mode_of "$OUT")" = 700
for f in ca_key.pem server_key.pem dev-1_key.pem dev-1_rpk_key.pem "${ENDPOINT}_key.pem"; do
    check "$f is mode 600" test "$(mode_of "$OUT/$f")" = 600
done
check "certificates are readable by others" test "$(mode_of "$OUT/server.pem")" = 644

check "openssl verifies the server and client certificates against the CA" \
    openssl verify -CAfile "$OUT/ca.pem" "$OUT/server.pem" "$OUT/dev-1.pem" "$OUT/$ENDPOINT.pem"
check "the CA is a CA" bash -c "openssl x509 -in '$OUT/ca.pem' -noout \
    -ext basicConstraints,keyUsage | tr -d '\n' | grep -q 'CA:TRUE.*Certificate Sign'"
check "the server CN is the server name" test "$(subject_cn "$OUT/server.pem")" = lwm2m.example.com
check "the server subjectAltName is the DNS name" bash -c "openssl x509 -in '$OUT/server.pem' \
    -noout -ext subjectAltName | grep -q 'DNS:lwm2m.example.com'"
check "the server certificate is for TLS servers" \
    bash -c "openssl x509 -in '$OUT/server.pem' -noout -purpose | grep -q '^SSL server : Yes'"
check "the client CN is the endpoint" test "$(subject_cn "$OUT/$ENDPOINT.pem")" = "$ENDPOINT"
check "the client certificate is for TLS clients" \
    bash -c "openssl x509 -in '$OUT/dev-1.pem' -noout -purpose | grep -q '^SSL client : Yes'"
check "the keys are P-256" \
    bash -c "openssl pkey -in '$OUT/server_key.pem' -noout -text | grep -q 'NIST CURVE: P-256'"
check "the chain is the server certificate then the CA" bash -c "
    openssl crl2pkcs7 -nocrl -certfile '$OUT/server_chain.pem' | openssl pkcs7 -print_certs -noout \
    | grep '^subject' | tr '\n' '|' | grep -q 'CN *= *lwm2m.example.com|.*CN *= *lwm2md CA|'"
check "server_rpk_pub.pem is the server key's public key" test \
    "$(public_of "$OUT/server_key.pem")" = "$(public_in "$OUT/server_rpk_pub.pem")"
check "the client RPK files are one pair" test \
    "$(public_of "$OUT/dev-1_rpk_key.pem")" = "$(cat "$OUT/dev-1_rpk_pub.pem")"
check "the client RPK differs from its certificate key" test \
    "$(public_of "$OUT/dev-1_rpk_key.pem")" != "$(public_of "$OUT/dev-1_key.pem")"
check "the certificate ends in 30 days" bash -c "
    openssl x509 -in '$OUT/server.pem' -noout -checkend $((29 * 86400)) >/dev/null &&
    ! openssl x509 -in '$OUT/server.pem' -noout -checkend $((31 * 86400)) >/dev/null"

# ---- existing files ----
before=$(sha256sum "$OUT/ca_key.pem")
check "a second run refuses to overwrite" run_cli 1 certs generate --out "$OUT"
check "the refusal is one line" test "$(wc -l <"$TEST_DIR/cli.err")" = 1
check "the refusal names the file" grep -q 'ca.pem exists' "$TEST_DIR/cli.err"
check "the refusal changed nothing" test "$(sha256sum "$OUT/ca_key.pem")" = "$before"
check "--force replaces the files" \
    run_cli 0 certs generate --out "$OUT" --server-name 10.1.2.3 --force
check "--force made a new CA" test "$(sha256sum "$OUT/ca_key.pem")" != "$before"
check "a replaced key file is still mode 600" test "$(mode_of "$OUT/server_key.pem")" = 600
check "an IP server name goes into subjectAltName as an IP" bash -c "openssl x509 \
    -in '$OUT/server.pem' -noout -ext subjectAltName | grep -q 'IP Address:10.1.2.3'"
check "the old client files stay, signed by the old CA" \
    bash -c "! openssl verify -CAfile '$OUT/ca.pem' '$OUT/dev-1.pem' >/dev/null 2>&1"

# ---- the daemon loads what generate wrote ----
if start_daemon LWM2M_SERVER_CREDENTIALS_ENABLED=true LWM2M_SERVER_CREDENTIALS_TYPE=PEM \
    LWM2M_SERVER_PEM_CERT="$OUT/server_chain.pem" LWM2M_SERVER_PEM_KEY="$OUT/server_key.pem" \
    LWM2M_TRUST_CREDENTIALS_ENABLED=true LWM2M_TRUST_CREDENTIALS_TYPE=PEM \
    LWM2M_TRUST_PEM_CERT="$OUT/ca.pem"; then
    check "the daemon serves certificates from the generated files" \
        grep -q 'credentials psk+rpk+x509' "$DAEMON_LOG"
    check "no key material in the daemon log" bash -c "! grep -q 'PRIVATE KEY' '$DAEMON_LOG'"
else
    fail "the daemon starts with the generated credentials"
fi

finish
