#!/bin/sh
# Regenerates the credential fixtures used by tests/unit/test_credentials.c
# and tests/unit/test_jks.c. The outputs are committed; run this only to
# change them (the tests hold no key material of their own).
#
# Passwords: key stores "storepass", keys inside JKS and encrypted PEM
# keys "keypass". Certificates are valid for 100 years so tests don't rot.
set -eu
cd "$(dirname "$0")"

DAYS=36500
STOREPASS=storepass
KEYPASS=keypass

rm -f ./*.pem ./*.der ./*.p12 ./*.jks ./*.srl

# A key in PKCS#8 PEM ("BEGIN PRIVATE KEY"). $1 file, $2 curve or "rsa".
genkey() {
    if [ "$2" = rsa ]; then
        openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"
    else
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:"$2" -out "$1"
    fi
}

# A self-signed root CA. $1 name, $2 CN.
make_ca() {
    genkey "$1_key.pem" P-256
    openssl req -new -x509 -key "$1_key.pem" -out "$1.pem" -days $DAYS -sha256 \
        -subj "/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -addext "subjectKeyIdentifier=hash"
}

# A leaf signed by ca. $1 name, $2 CN, $3 curve or rsa, $4 EKU.
make_leaf() {
    genkey "$1_key.pem" "$3"
    openssl req -new -key "$1_key.pem" -subj "/CN=$2" -out "$1.csr"
    printf '%s\n' "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" \
        "extendedKeyUsage=$4" \
        "subjectAltName=DNS:$2" \
        "authorityKeyIdentifier=keyid" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca_key.pem -CAcreateserial \
        -days $DAYS -sha256 -extfile "$1.ext" -out "$1.pem"
    rm -f "$1.csr" "$1.ext"
}

# Two CAs; the second one only for trust stores.
make_ca ca "lwm2md test CA 1"
make_ca ca2 "lwm2md test CA 2"
cat ca.pem ca2.pem > trust_2ca.pem

# The server (P-256) in every PEM layout.
make_leaf server localhost P-256 serverAuth
cat server.pem ca.pem > server_chain.pem
cat server.pem ca.pem server_key.pem > server_with_key.pem
openssl pkcs8 -topk8 -in server_key.pem -v2 aes-256-cbc -passout pass:$KEYPASS \
    -out server_key_pkcs8_enc.pem
openssl ec -in server_key.pem -aes256 -passout pass:$KEYPASS \
    -out server_key_legacy_enc.pem
openssl ec -in server_key.pem -out server_key_traditional.pem
openssl pkey -in server_key.pem -outform DER -out server_key.der
# The chain in the "wrong" order: CA first.
cat ca.pem server.pem > server_chain_reversed.pem

# Keys the loader must refuse or accept.
make_leaf rsa rsa.example rsa serverAuth
make_leaf p384 p384.example P-384 serverAuth
make_leaf p521 p521.example P-521 serverAuth
genkey other_key.pem P-256

# A client, for reading pinned certificates and raw public keys.
make_leaf client client-ep-1 P-256 clientAuth
openssl x509 -in client.pem -outform DER -out client.der
openssl pkey -in client_key.pem -pubout -out client_pub.pem
openssl pkey -in client_key.pem -pubout -outform DER -out client_pub.der
openssl pkey -in rsa_key.pem -pubout -out rsa_pub.pem

# PKCS#12: the server key with its chain, friendly name "server".
openssl pkcs12 -export -in server_chain.pem -inkey server_key.pem -name server \
    -passout pass:$STOREPASS -out server.p12
# PKCS#12 with a key only (no certificate).
openssl pkcs12 -export -nocerts -inkey server_key.pem -name server \
    -passout pass:$STOREPASS -out key_only.p12
openssl pkcs12 -export -in p384.pem -inkey p384_key.pem -name p384 \
    -passout pass:$STOREPASS -out p384.p12

# JKS, written by keytool: "server" (P-256, key password differs from
# the store password), then a store with two keys and a trusted CA.
keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 \
    -srcstorepass $STOREPASS -srcalias server -destkeystore server.jks \
    -deststoretype JKS -deststorepass $STOREPASS -destalias server \
    -destkeypass $KEYPASS 2>/dev/null
cp server.jks multi.jks
keytool -importkeystore -noprompt -srckeystore p384.p12 -srcstoretype PKCS12 \
    -srcstorepass $STOREPASS -srcalias p384 -destkeystore multi.jks \
    -deststoretype JKS -deststorepass $STOREPASS -destalias p384 \
    -destkeypass $KEYPASS 2>/dev/null
keytool -importcert -noprompt -storetype JKS -keystore multi.jks -storepass $STOREPASS \
    -alias ca -file ca.pem 2>/dev/null

# PKCS#12 written by keytool with two keys and a trusted CA.
for src in server p384; do
    keytool -importkeystore -noprompt -srckeystore $src.p12 -srcstoretype PKCS12 \
        -srcstorepass $STOREPASS -srcalias $src -destkeystore multi.p12 \
        -deststoretype PKCS12 -deststorepass $STOREPASS -destalias $src 2>/dev/null
done
keytool -importcert -noprompt -storetype PKCS12 -keystore multi.p12 -storepass $STOREPASS \
    -alias ca -file ca.pem 2>/dev/null

# Trust stores with both CAs as trusted-certificate entries.
for type in JKS PKCS12; do
    ext=jks
    [ $type = PKCS12 ] && ext=p12
    for ca in ca ca2; do
        keytool -importcert -noprompt -storetype $type -keystore trust.$ext \
            -storepass $STOREPASS -alias $ca -file $ca.pem 2>/dev/null
    done
done

# JKS hashes the password as UTF-16: a password with a character outside
# the Basic Multilingual Plane (a surrogate pair) checks that conversion.
LC_ALL=C.UTF-8 keytool -importcert -noprompt -storetype JKS -keystore trust_utf8.jks \
    -storepass 'pässwörd€𝄞' -alias ca -file ca.pem 2>/dev/null

rm -f ./*.srl
