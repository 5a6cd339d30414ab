#!/usr/bin/env bash
# Runs every test of reSTM from a clean clone, installing what is missing first.
#   scripts/test.sh            all tests (Swift unit/integration tests, then the HTTP suite)
#   RESTM_SEED=123 scripts/test.sh   replay randomized tests with a given seed
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# System packages: SQLite headers for the store, Python for the black-box HTTP suite.
missing=()
[ -f /usr/include/sqlite3.h ] || missing+=(libsqlite3-dev)
command -v python3 >/dev/null || missing+=(python3 python3-pip)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
python3 -c 'import pytest' 2>/dev/null || python3 -m pip install -q pytest

echo "== build" >&2
swift build --build-tests
echo "== swift tests" >&2
swift test --skip-build

echo "== HTTP suite against a live node" >&2
RESTM_BIN="$(swift build --show-bin-path)/restm" python3 -m pytest -q Tests/api
