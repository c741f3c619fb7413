#!/usr/bin/env bash
# scripts/setup.sh: install rosql's Debian packages (when missing), then
# configure and build.  Idempotent: run it as often as you like.
#
#   scripts/setup.sh            # release build in build/
#   BUILD_DIR=build-asan ROSQL_SANITIZE=ON scripts/setup.sh
#
# As root it runs apt-get itself; otherwise it prints the exact command.
set -euo pipefail
cd "$(dirname "$0")/.."

# nng is built from Debian's source package (third_party/nng), which needs patch.
PACKAGES=(build-essential cmake pkg-config patch libpg-query-dev libprotobuf-c-dev libsqlite3-dev
          libcmocka-dev libedit-dev sqlite3 time python3
          gdb) # gdb: tests print a hung process's backtraces with it
# PostgreSQL is only needed by the differential tests (tests/diff), which
# skip cleanly without it; install it when asked.
if [ "${ROSQL_WITH_POSTGRES:-0}" = 1 ]; then
  PACKAGES+=(postgresql)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  cmd="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    $cmd
  else
    echo "setup: missing packages: ${missing[*]}"
    echo "setup: run as root:  apt-get update && $cmd"
    exit 1
  fi
fi

BUILD_DIR=${BUILD_DIR:-build}
BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo}
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="$BUILD_TYPE" -DROSQL_SANITIZE="${ROSQL_SANITIZE:-OFF}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"
echo "setup: built $BUILD_DIR/shell/rosql"
