#!/usr/bin/env bash
# Start-up: every credential loading path, and bad settings that must
# stop the start with one line naming the variable.
. "$(dirname "$0")/lib.sh"

CREDS="$TEST_DATA/credentials"
SERVER=(LWM2M_SERVER_CREDENTIALS_ENABLED=true)

# starts_with_certificate NAME ENV...: the daemon starts and serves RPK and X.509.
starts_with_certificate() {
    local name=$1
    shift
    if start_daemon "$@" && grep -q 'credentials psk+rpk+x509' "$DAEMON_LOG"; then
        pass "$name"
    else
        fail "$name"
    fi
    stop_daemon >/dev/null
}

# refuses NAME PATTERN ENV...: the start stops, exit non-zero, one line matching PATTERN.
refuses() {
    local name=$1 pattern=$2 status=0
    shift 2
    env LWM2MD_DATA_DIR="$DATA_DIR" LWM2M_BIND_ADDRESS=127.0.0.1 LWM2M_BIND_PORT=0 \
        LWM2M_SECURITY_BIND_ADDRESS=127.0.0.1 LWM2M_SECURITY_BIND_PORT=0 \
        "$@" timeout 20 "$LWM2MD" serve >"$TEST_DIR/start.out" 2>&1 || status=$?
    if [ "$status" -ne 0 ] && [ "$status" -ne 124 ] && grep -qE "$pattern" "$TEST_DIR/start.out" &&
        ! grep -q ' started (' "$TEST_DIR/start.out"; then
        pass "$name"
    else
        echo "exit $status, output:"
        cat "$TEST_DIR/start.out"
        fail "$name"
    fi
}

starts_with_certificate "PEM with the key inside the certificate file" "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_with_key.pem" LWM2M_SERVER_PEM_KEY=
starts_with_certificate "PEM chain with a separate key" "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_chain.pem" LWM2M_SERVER_PEM_KEY="$CREDS/server_key.pem"
starts_with_certificate "encrypted PKCS#8 key with the right password" "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_chain.pem" \
    LWM2M_SERVER_PEM_KEY="$CREDS/server_key_pkcs8_enc.pem" LWM2M_SERVER_PEM_KEY_PASSWORD=keypass
starts_with_certificate "encrypted OpenSSL EC key with the right password" "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_chain.pem" \
    LWM2M_SERVER_PEM_KEY="$CREDS/server_key_legacy_enc.pem" LWM2M_SERVER_PEM_KEY_PASSWORD=keypass
starts_with_certificate "PKCS#12 key store" "${SERVER[@]}" LWM2M_SERVER_CREDENTIALS_TYPE=KEYSTORE \
    LWM2M_SERVER_KEY_STORE_TYPE=PKCS12 LWM2M_SERVER_KEY_STORE="$CREDS/server.p12" \
    LWM2M_SERVER_KEY_STORE_PASSWORD=storepass LWM2M_SERVER_KEY_ALIAS=server \
    LWM2M_SERVER_KEY_PASSWORD=storepass
starts_with_certificate "JKS key store" "${SERVER[@]}" LWM2M_SERVER_CREDENTIALS_TYPE=KEYSTORE \
    LWM2M_SERVER_KEY_STORE_TYPE=JKS LWM2M_SERVER_KEY_STORE="$CREDS/server.jks" \
    LWM2M_SERVER_KEY_STORE_PASSWORD=storepass LWM2M_SERVER_KEY_ALIAS=server \
    LWM2M_SERVER_KEY_PASSWORD=keypass
starts_with_certificate "P-384 key" "${SERVER[@]}" LWM2M_SERVER_PEM_CERT="$CREDS/p384.pem" \
    LWM2M_SERVER_PEM_KEY="$CREDS/p384_key.pem"

refuses "wrong PEM key password" 'LWM2M_SERVER_PEM_KEY_PASSWORD' "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_chain.pem" \
    LWM2M_SERVER_PEM_KEY="$CREDS/server_key_pkcs8_enc.pem" LWM2M_SERVER_PEM_KEY_PASSWORD=Xq7-not-it
check "the wrong password is not echoed" bash -c "! grep -q Xq7-not-it '$TEST_DIR/start.out'"
refuses "missing certificate file" 'LWM2M_SERVER_PEM_CERT=.*/nowhere.pem' "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT=/nowhere.pem
refuses "RSA key" 'LWM2M_SERVER_PEM_(CERT|KEY).*RSA' "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/rsa.pem" LWM2M_SERVER_PEM_KEY="$CREDS/rsa_key.pem"
refuses "key that does not match the certificate" 'does not match' "${SERVER[@]}" \
    LWM2M_SERVER_PEM_CERT="$CREDS/server_chain.pem" LWM2M_SERVER_PEM_KEY="$CREDS/other_key.pem"
refuses "alias not in the JKS store" 'LWM2M_SERVER_KEY_ALIAS=nobody' "${SERVER[@]}" \
    LWM2M_SERVER_CREDENTIALS_TYPE=KEYSTORE LWM2M_SERVER_KEY_STORE_TYPE=JKS \
    LWM2M_SERVER_KEY_STORE="$CREDS/server.jks" LWM2M_SERVER_KEY_STORE_PASSWORD=storepass \
    LWM2M_SERVER_KEY_ALIAS=nobody LWM2M_SERVER_KEY_PASSWORD=keypass
refuses "wrong JKS store password" 'LWM2M_SERVER_KEY_STORE_PASSWORD' "${SERVER[@]}" \
    LWM2M_SERVER_CREDENTIALS_TYPE=KEYSTORE LWM2M_SERVER_KEY_STORE_TYPE=JKS \
    LWM2M_SERVER_KEY_STORE="$CREDS/server.jks" LWM2M_SERVER_KEY_STORE_PASSWORD=nope \
    LWM2M_SERVER_KEY_ALIAS=server LWM2M_SERVER_KEY_PASSWORD=keypass

refuses "bootstrap credentials are checked too" 'LWM2M_BS_PEM_CERT=/bs/none.pem' \
    LWM2M_BS_CREDENTIALS_ENABLED=true LWM2M_BS_PEM_CERT=/bs/none.pem

# Settings are checked before any port is bound.
refuses "bad port" '^lwm2md: LWM2M_BIND_PORT=70000: ' LWM2M_BIND_PORT=70000
refuses "bad boolean" 'LWM2MD_ALLOW_UNKNOWN_NOSEC=yes' LWM2MD_ALLOW_UNKNOWN_NOSEC=yes
refuses "unknown log level" 'LWM2MD_LOG_LEVEL=loud' LWM2MD_LOG_LEVEL=loud
refuses "unreadable conf file" 'LWM2MD_CONFIG=/no/such.conf' LWM2MD_CONFIG=/no/such.conf

# Command-line usage errors exit 2 and never echo a value.
status=0
"$LWM2MD" serve --set LWM2M_SERVER_KEY_PASWORD=hunter2 >"$TEST_DIR/usage.out" 2>&1 || status=$?
check "an unknown --set name is a usage error (exit 2)" [ "$status" -eq 2 ]
check "the unknown setting's value is not echoed" bash -c "! grep -q hunter2 '$TEST_DIR/usage.out'"
status=0
"$LWM2MD" serve --bogus >/dev/null 2>&1 || status=$?
check "an unknown option is a usage error (exit 2)" [ "$status" -eq 2 ]

# A conf file in thingsboard.conf form; the environment wins over it.
cat >"$TEST_DIR/bad.conf" <<'CONF'
export LWM2M_SERVER_ID=0
CONF
refuses "conf file values are validated" 'LWM2M_SERVER_ID=0' LWM2MD_CONFIG="$TEST_DIR/bad.conf"
cat >"$TEST_DIR/lwm2m.conf" <<'CONF'
# transport settings, as in thingsboard.conf
export LWM2M_BIND_PORT=70001   # overridden by the environment
export LWM2MD_ALLOW_UNKNOWN_NOSEC="true"
CONF
if start_daemon LWM2MD_CONFIG="$TEST_DIR/lwm2m.conf" &&
    grep -q 'LWM2MD_ALLOW_UNKNOWN_NOSEC=true' "$DAEMON_LOG"; then
    pass "conf file is read and the environment overrides it"
else
    fail "conf file is read and the environment overrides it"
fi

# A second server: not on a port in use, not on the same data directory.
refuses "port already in use" 'NoSec listener 127.0.0.1:[0-9]+: cannot bind \(Address already in use\)' \
    LWM2M_BIND_PORT="$COAP_PORT" LWM2MD_DATA_DIR="$TEST_DIR/other"
refuses "data directory in use" 'another lwm2md server is using it' LWM2MD_DATA_DIR="$DATA_DIR"

# Unknown NoSec endpoints: off by default, and said at start-up when on.
stop_daemon
start_daemon LWM2MD_ALLOW_UNKNOWN_NOSEC=true || exit 1
check "allow-unknown is announced at start-up" wait_log 'warn .*LWM2MD_ALLOW_UNKNOWN_NOSEC=true'
coap post "coap://127.0.0.1:$COAP_PORT/rd?ep=anyone&lt=60" -t 40 -e '</1/0>'
check "unknown endpoint may register when allowed" [ "$(coap_code)" = "2.01" ]

finish
