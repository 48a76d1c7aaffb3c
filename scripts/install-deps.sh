#!/usr/bin/env bash
# Installs the Debian packages lwm2md needs to build, run and test.
# Installs only what is missing; needs root (or sudo) when it installs.
set -eu

packages=(
    build-essential cmake pkg-config
    clang libclang-rt-14-dev          # fuzzing (libFuzzer) and sanitizers
    libuv1-dev                        # event loop, timers, signals
    libsqlite3-dev sqlite3            # embedded store
    libgnutls28-dev gnutls-bin        # DTLS 1.2, credentials, certtool
    libcmocka-dev                     # unit tests
    libcoap3-bin                      # independent CoAP/DTLS clients for tests
    openssl                           # test fixtures, documented openssl steps
    procps                            # resident-memory figures
    python3                           # test helpers (raw DTLS datagrams)
)

missing=()
for p in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
