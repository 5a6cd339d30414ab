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
# A real headless browser for the explorer's tests (Tests/api/test_explorer.py).
command -v chromium >/dev/null || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
# Python packages of the HTTP suite: pytest; schemathesis 4 (fuzzing against /openapi.json),
# jsonschema and openapi-spec-validator (Tests/api/test_openapi.py). Only what is missing.
pip_install() { python3 -m pip install -q "$@" || python3 -m pip install -q --break-system-packages "$@"; }
python3 -c 'import pytest' 2>/dev/null || pip_install pytest
python3 -c 'import schemathesis, sys; sys.exit(not schemathesis.__version__.startswith("4."))' 2>/dev/null ||
  pip_install 'schemathesis>=4,<5'
python3 -c 'import jsonschema' 2>/dev/null || pip_install jsonschema
python3 -c 'import openapi_spec_validator' 2>/dev/null || pip_install openapi-spec-validator

echo "== build" >&2
swift build --build-tests
echo "== swift tests" >&2
swift test --skip-build

echo "== HTTP suite against a live node" >&2
RESTM_BIN="$(swift build --show-bin-path)/restm" python3 -m pytest -q Tests/api
