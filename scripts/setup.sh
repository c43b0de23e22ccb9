#!/usr/bin/env bash
# Installs the Debian packages align builds and tests with.
set -euo pipefail
PKGS="build-essential cmake pkg-config clang libclang-rt-dev libopenblas-openmp-dev libjansson-dev
libpcre2-dev libyaml-dev libsqlite3-dev libmicrohttpd-dev zlib1g-dev wordnet-base chromium
openmpi-bin libopenmpi-dev"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=""
for p in $PKGS; do
  dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing$missing"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi
if [ "${ALIGN_BENCH_DEPS:-0}" = 1 ]; then
  for p in python3-torch python3-numpy; do
    dpkg -s "$p" >/dev/null 2>&1 || { $SUDO apt-get update -qq; DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $p >/dev/null; }
  done
fi
# The client-side tests of align serve (tests/serve: the openai npm client, Playwright)
# run in Node with the modules its package-lock.json pins.  Installed only where node is:
# without it ctest skips them.  npm ci records what it installed in
# node_modules/.package-lock.json; an older record than the lock file means stale modules.
serve_tests="$(cd "$(dirname "$0")/.." && pwd)/tests/serve"
if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && [ -f "$serve_tests/package-lock.json" ]; then
  if [ ! -f "$serve_tests/node_modules/.package-lock.json" ] ||
     [ "$serve_tests/package-lock.json" -nt "$serve_tests/node_modules/.package-lock.json" ]; then
    echo "setup: npm ci in tests/serve"
    (cd "$serve_tests" && npm ci --no-audit --no-fund --loglevel=error) ||
      echo "setup: npm ci in tests/serve failed; the serve_http test will try again or be skipped" >&2
  fi
fi
echo "setup: dependencies present"
