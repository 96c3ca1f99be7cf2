#!/usr/bin/env bash
# Create or refresh the project virtualenv (.venv) with the whole pinned stack, idempotently.
#
#   bash tools/install/install.sh [VENV_DIR]        (any path, relative to the current directory)
#
# Skips everything when the venv's stamp matches the hash of requirements/, setup.py and this
# folder; otherwise (re)installs step by step and prints how long each step took. The stamp is
# written last, so an interrupted or failed install is never taken for a finished one.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.venv}
# every path handed on is absolute (the mmcv build runs from another directory)
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
mkdir -p "$(dirname "$venv")"
venv="$(cd "$(dirname "$venv")" && pwd)/$(basename "$venv")"
rerun="bash $root/tools/install/install.sh $venv"
stamp="$venv/.mmsparse-install-stamp"
want=$(cat "$root"/requirements/*.txt "$root/setup.py" "$root"/tools/install/*.sh | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$venv/bin/python" ]; then
  echo "[install] $venv is up to date"
  exit 0
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || { echo "[install] error: $PYTHON not found (mmsparse needs Python 3.11)" >&2; exit 1; }
t_all=$(date +%s)
step() {  # step NAME CMD...: run a step and report its wall time; on failure say which and how to rerun
  local name=$1; shift
  local t0 rc=0; t0=$(date +%s)
  echo "[install] >>> $name"
  "$@" || rc=$?
  if [ $rc != 0 ]; then
    echo "[install] FAILED at step '$name' (exit $rc, after $(( $(date +%s) - t0 )) s): see the messages above." >&2
    echo "[install] Nothing is marked installed; after fixing the cause rerun: $rerun" >&2
    exit $rc
  fi
  echo "[install] <<< $name: $(( $(date +%s) - t0 )) s"
}
trap 'echo "[install] interrupted: nothing is marked installed; rerun: $rerun" >&2; exit 130' INT TERM
pip() {  # pip of the venv, without the noise of this machine's missing local index folders
  "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
  return "${PIPESTATUS[0]}"
}
# requirement lines ending in '--no-deps' are installed without their declared dependencies
reqs_nodeps() { grep -E -- '--no-deps' "$1" | sed -E 's/#.*//; s/--no-deps//' | xargs; }
reqs_plain() { grep -v -E -- '--no-deps' "$1" | sed -E 's/#.*//' | grep -v -E '^(mmcv==|\s*$)' | xargs; }

step "virtualenv" "$PYTHON" -m venv "$venv"
rm -f "$stamp"
step "build tools" pip install -q --upgrade -r "$root/requirements/build.txt"
step "torch + runtime" pip install -q $(reqs_plain "$root/requirements/runtime.txt")
# build_mmcv.sh prints the cached wheel's path last; one call, its output kept for that line
mmcv_log="$venv/build_mmcv.out"
step "mmcv wheel (cached build)" bash -c 'set -o pipefail; bash "$1" "$2" | tee "$3"' _ \
  "$root/tools/install/build_mmcv.sh" "$venv/bin/python" "$mmcv_log"
mmcv_whl=$(tail -1 "$mmcv_log")
step "OpenMMLab packages" pip install -q "$mmcv_whl" $(reqs_plain "$root/requirements/mminstall.txt") $(reqs_plain "$root/requirements/runtime.txt")
step "mmdet3d (no deps)" pip install -q --no-deps $(reqs_nodeps "$root/requirements/optional.txt")
step "mmdet3d imports" pip install -q $(reqs_plain "$root/requirements/optional.txt") $(reqs_plain "$root/requirements/runtime.txt")
echo "[install] note: pip's resolver complaints about nuscenes-devkit (numpy<2, Shapely~=2.0.3), lyft_dataset_sdk"
echo "[install]       (black/flake8/pytest) and mmdet3d (open3d) are expected: they are installed --no-deps on purpose"
step "test tools" pip install -q -r "$root/requirements/tests.txt"
step "deployment (onnx, onnxruntime)" pip install -q -r "$root/requirements/deploy.txt"
step "mmsparse (editable)" pip install -q --no-deps --no-build-isolation -e "$root"
step "import check" "$venv/bin/python" - <<'PY'
import torch, mmcv, mmcv.ops, mmengine, mmdet, mmseg, mmpretrain, mmdet3d, timm, numpy
import mmsparse
from mmcv.ops import nms, RoIAlign
boxes = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]])
keep = nms(boxes, torch.tensor([.9, .8, .7]), .5)[1]
assert keep.tolist() == [0, 2], keep
roi = RoIAlign((2, 2), 1.0, 0)(torch.arange(16.).view(1, 1, 4, 4), torch.tensor([[0., 0, 0, 3, 3]]))
assert roi.shape == (1, 1, 2, 2)
print('torch', torch.__version__, 'numpy', numpy.__version__, 'mmcv', mmcv.__version__,
      'mmengine', mmengine.__version__, 'mmdet', mmdet.__version__, 'mmseg', mmseg.__version__,
      'mmpretrain', mmpretrain.__version__, 'mmdet3d', mmdet3d.__version__, 'timm', timm.__version__,
      'mmsparse', mmsparse.__version__)
PY
echo "$want" > "$stamp"
echo "[install] done in $(( $(date +%s) - t_all )) s"
