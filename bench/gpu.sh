#!/usr/bin/env bash
# The GPU host's one check (bench/gpu_check.py) from a fresh copy of the tree: the host has torch but no
# network, so albumentations and its needs come from a wheelhouse carried with the tree.
# Usage: bench/gpu.sh DIR [gpu_check.py options: --smoke, --parts env,tests,..., --data DIR, --work DIR]
#   DIR gets gpu-check.json and one log per part. Wheels: $GPU_WHEELS (default gpu-wheels/), made with
#   ../shared/gpu/wheelhouse.sh gpu-wheels on a machine with network. Data: gpu-data/ (see gpu_check.py).
set -uo pipefail
out=${1:?usage: bench/gpu.sh DIR [--smoke] [--parts LIST] [--data DIR] [--work DIR]}
shift
cd "$(dirname "$0")/.." || exit 2
python=${PYTHON:-python3}
wheels=${GPU_WHEELS:-gpu-wheels}
site=${GPU_SITE:-/tmp/site}
export NO_ALBUMENTATIONS_UPDATE=1 PYTHONUNBUFFERED=1 GPU_CHECK_WHEELS=$wheels
# A killed torchrun part must not fill the log with NCCL watchdog stack dumps.
export TORCH_NCCL_ENABLE_MONITORING=0
mkdir -p "$out"

if "$python" -c 'import albumentations' 2>/dev/null; then
  export GPU_CHECK_SETUP="present: albumentations already importable"
elif compgen -G "$wheels/*.whl" >/dev/null; then
  # --target keeps the host's own packages untouched; --no-deps because the wheelhouse lists every need.
  if "$python" -m pip install -q --no-index --no-deps --no-compile --target "$site" "$wheels"/*.whl \
    >"$out/setup.log" 2>&1; then
    export GPU_CHECK_SETUP="installed: $(find "$wheels" -maxdepth 1 -name '*.whl' | wc -l) wheels into $site"
    export PYTHONPATH=$site${PYTHONPATH:+:$PYTHONPATH}
  else
    export GPU_CHECK_SETUP="failed: pip install from $wheels (see setup.log)"
    cat "$out/setup.log" >&2
  fi
else
  export GPU_CHECK_SETUP="missing: albumentations is not importable and $wheels/ holds no wheels"
  echo "error: albumentations is missing and $wheels/ holds no wheels. On a machine with network run," >&2
  echo "  from the project root: ../shared/gpu/wheelhouse.sh $wheels   then carry $wheels with the tree." >&2
  echo "  Going on: every part that imports augmentor will fail and say so in $out/gpu-check.json." >&2
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
exec "$python" bench/gpu_check.py --out "$out" "$@"
