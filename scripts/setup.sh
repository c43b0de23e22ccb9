#!/usr/bin/env bash
# Installs the Debian packages align builds and tests with.
set -euo pipefail
PKGS="build-essential cmake pkg-config clang libclang-rt-dev libopenblas-openmp-dev libjansson-dev
libpcre2-dev libyaml-dev libsqlite3-dev libmicrohttpd-dev zlib1g-dev wordnet-base chromium"
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
echo "setup: dependencies present"
