#!/usr/bin/env bash
# helm, for `helm template` in the chart's test (tests/unit/repo/test_deploy_chart.py): built once from
# the Go module proxy into .local/bin and reused; `make test` and the test call this when it is missing.
# The version is named here (the test reads it); changing it builds the new one at the next call.
set -euo pipefail
HELM_VERSION=v3.21.4
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.local/bin"
STAMP="$BIN/helm.version"

if [ -x "$BIN/helm" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$HELM_VERSION" ]; then
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "building helm $HELM_VERSION needs Go (1.24 or later): install it (https://go.dev/doc/install or" \
       "your package manager) and put it on PATH" >&2
  exit 1
fi
mkdir -p "$BIN"
echo "building helm $HELM_VERSION from the Go module proxy into $BIN (once; a few minutes)" >&2
start=$(date +%s)
GOBIN="$BIN" GOFLAGS=-buildvcs=false CGO_ENABLED=0 go install "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
echo "$HELM_VERSION" > "$STAMP"
echo "helm $HELM_VERSION built in $(( $(date +%s) - start )) s" >&2
