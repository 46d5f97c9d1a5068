#!/usr/bin/env bash
# Installs what the tests need beyond the Rust toolchain, and nothing that is already
# there: Debian's chromium (the browser the end-to-end test drives), the npm packages
# of server/tests/e2e (playwright-core, from its package-lock.json), redis-server
# with redis-cli (the shared store the multi-instance tests start, testkit/), openssl
# (their TLS Redis's certificates), libfaketime (one of those tests sets a server's
# clock off), and the
# third-party device-flow clients: openid-client (npm) and Authlib (PyPI, in a venv).
# Idempotent; run as root (or with sudo) on a Debian-based machine.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi

if [ -x /usr/bin/chromium ]; then
    echo "install-test-deps: chromium is installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
    echo "install-test-deps: installing chromium (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "install-test-deps: installing nodejs and npm (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends nodejs npm
fi

# The tests start their own redis-server processes (never a system service) on free
# loopback ports; the package's service is left as Debian sets it up.
if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
    echo "install-test-deps: redis-server is installed ($(redis-server --version 2>/dev/null | head -n 1))"
else
    echo "install-test-deps: installing redis-server and redis-cli (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends redis-server redis-tools
fi

# openssl: the tests' TLS Redis gets a CA and a certificate made with it (testkit/).
if command -v openssl >/dev/null; then
    echo "install-test-deps: openssl is installed"
else
    echo "install-test-deps: installing openssl (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends openssl
fi

# libfaketime: a multi-instance test sets one server's wall clock off Redis's
# (LD_PRELOAD of libfaketimeMT), to see it warn of the offset.
if ls /usr/lib/*/faketime/libfaketimeMT.so.1 >/dev/null 2>&1; then
    echo "install-test-deps: libfaketime is installed"
else
    echo "install-test-deps: installing faketime (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends faketime
fi

e2e="$root/server/tests/e2e"
if [ -d "$e2e/node_modules/playwright-core" ]; then
    echo "install-test-deps: $e2e/node_modules is present"
else
    echo "install-test-deps: npm ci in $e2e"
    # playwright-core ships no browser and downloads none; we drive /usr/bin/chromium.
    (cd "$e2e" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi
# The third-party device-flow clients (server/tests/server/third_party.rs), from their
# registries: openid-client from npm (its package-lock.json), Authlib from PyPI (its
# requirements.txt, exact versions) in a venv of its own.
interop="$root/server/tests/interop"
if [ -d "$interop/node/node_modules/openid-client" ]; then
    echo "install-test-deps: $interop/node/node_modules is present"
else
    echo "install-test-deps: npm ci in $interop/node"
    (cd "$interop/node" && npm ci --no-audit --no-fund)
fi
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
    echo "install-test-deps: installing python3-venv (apt-get)"
    $sudo apt-get update -q
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends python3-venv
fi
venv="$interop/python/.venv"
if "$venv/bin/python" -c 'import authlib, requests' 2>/dev/null; then
    echo "install-test-deps: $venv has Authlib"
else
    echo "install-test-deps: pip install -r requirements.txt in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$interop/python/requirements.txt"
fi
echo "install-test-deps: done"
