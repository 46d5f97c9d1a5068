#!/usr/bin/env bash
# The tests, on a fresh machine: installs what they need beyond the Rust toolchain
# (scripts/install-test-deps.sh: chromium and playwright-core for the browser tests,
# redis-server and redis-cli for the multi-instance tests, openid-client (npm) and
# Authlib (PyPI) for the third-party client tests),
# then runs every test of the workspace, benches included (compiled and run once).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
cargo test --workspace --all-targets "$@"
