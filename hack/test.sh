#!/usr/bin/env bash
# The test command behind `make test` and CI: linters, strict type checks,
# then every test tier. Fails when pytest collects no tests (exit 5), so a
# broken collection can never pass as green.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${VENV:-.venv}"
bin="$venv/bin"
status=0

step() {
  echo "==> $*"
  "$@" || { echo "FAILED: $*" >&2; status=1; }
}

# The standard library's operator module must win over the operator/ folder.
step "$bin/python" -c 'import operator, sys; sys.exit(0 if operator.__file__.endswith("/operator.py") and "/lib/python" in operator.__file__ else "operator/ shadows the standard library: " + operator.__file__)'
step "$bin/ruff" check .
step "$bin/ruff" format --check .
step "$bin/mypy" cli sidecar operator devkit examples/model_server/scripted_model_server.py
if [[ -f .importlinter ]]; then
  step "$bin/lint-imports"
fi
[[ "${1:-}" == "--lint-only" ]] && exit $status

export EXECGUARD_BIN_DIR="${EXECGUARD_BIN_DIR:-$(hack/build-binaries.sh --print-dir)}"
echo "==> pytest (binaries from $EXECGUARD_BIN_DIR)"
"$bin/pytest" -p no:cacheprovider
code=$?
if [[ $code -eq 5 ]]; then
  echo "FAILED: pytest collected no tests" >&2
  status=1
elif [[ $code -ne 0 ]]; then
  status=1
fi
exit $status
