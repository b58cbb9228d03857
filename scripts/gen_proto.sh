#!/usr/bin/env bash
# Generate the Python code and typed stubs for the contract into switchyard/v1/.
# With --check, generate into a scratch folder and fail if the committed code is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
out=.
if [[ "${1:-}" == "--check" ]]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
mkdir -p "$out/switchyard/v1"
PATH="$(dirname "$PY"):$PATH" "$PY" -m grpc_tools.protoc -Iproto \
  --python_out="$out" --mypy_out="$out" \
  --grpc_python_out="$out" --mypy_grpc_out="$out" \
  proto/switchyard/v1/*.proto
touch "$out/switchyard/v1/__init__.py"
if [[ "$out" != "." ]]; then
  if ! diff -r -x __pycache__ "$out/switchyard/v1" switchyard/v1; then
    echo "generated code is stale: run scripts/gen_proto.sh and commit" >&2
    exit 1
  fi
  echo "generated code is up to date"
fi
