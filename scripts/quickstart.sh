#!/usr/bin/env bash
# scripts/quickstart.sh: set up, build, and run examples/quickstart.sql.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
db=$(mktemp -d)/quickstart.db
build/shell/rosql -f examples/quickstart.sql "$db"
echo
echo "quickstart: done. Open the database interactively with:  build/shell/rosql $db"
