#!/usr/bin/env bash
# scripts/test.sh: set up, build, and run the whole test suite, then the
# suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
#   ROSQL_SKIP_ASAN=1 scripts/test.sh   # only the normal build
set -euo pipefail
cd "$(dirname "$0")/.."
ROSQL_WITH_POSTGRES=1 scripts/setup.sh
(cd build && ctest --output-on-failure -j2 --timeout 300)
if [ "${ROSQL_SKIP_ASAN:-0}" != 1 ]; then
  BUILD_DIR=build-asan ROSQL_SANITIZE=ON BUILD_TYPE=Debug scripts/setup.sh
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
     LSAN_OPTIONS=suppressions=$PWD/../tests/lsan.supp \
     ctest --output-on-failure -j2 --timeout 600)
fi
