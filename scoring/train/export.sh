#!/usr/bin/env bash
# Re-runs the whole training chain: venv (pinned requirements) -> simulated training windows -> IsolationForest ->
# scoring/models/iforest.onnx + iforest.json -> test fixtures. About a minute on 2 cores (CI runs it).
#   scoring/train/export.sh [--models-dir DIR] [--fixtures-dir DIR] [--devices N] [--hours H]
# Files land in the models directory by write-then-rename (sidecar first, then the .onnx), the way every model
# must be dropped into a running service's MODELS_DIR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
models="$here/../models"
fixtures="$here/../fixtures"
devices=100
hours=2
while [ $# -gt 0 ]; do
  case "$1" in
    --models-dir) models="$2"; shift 2 ;;
    --fixtures-dir) fixtures="$2"; shift 2 ;;
    --devices) devices="$2"; shift 2 ;;
    --hours) hours="$2"; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"

(cd "$root" && npx tsc -b scoring >&2)
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node "$root/scoring/dist/tools/make-training-data.js" --out "$work/train.csv" --devices "$devices" --hours "$hours"
(cd "$here" && "$venv/bin/python" train.py --data "$work/train.csv" --out "$work/iforest" --report "$here/report.json")
(cd "$here" && "$venv/bin/python" fixtures.py --data "$work/train.csv" --out "$fixtures")
mkdir -p "$models"
cp "$work/iforest.json" "$models/.iforest.json.tmp" && mv -f "$models/.iforest.json.tmp" "$models/iforest.json"
cp "$work/iforest.onnx" "$models/.iforest.onnx.tmp" && mv -f "$models/.iforest.onnx.tmp" "$models/iforest.onnx"
echo "exported $models/iforest.onnx ($(stat -c %s "$models/iforest.onnx") bytes), report in $here/report.json"
