#!/usr/bin/env bash
# Build mmcv 2.1.0 *with ops* from its sdist once and cache the wheel; later installs reuse it.
#
# Why: mmcv publishes no wheel for torch 2.14, and torch 2.14's ATen headers refuse anything below
# C++20 while mmcv's setup.py hard-codes -std=c++14/17. We patch that flag and build without build
# isolation (the isolated env would pull setuptools>=82, which lacks pkg_resources).
#
# Usage: build_mmcv.sh PYTHON      (the interpreter of the target virtualenv)
# Env:   MMSPARSE_CACHE   cache root (default ~/.cache/mmsparse); wheels go to $MMSPARSE_CACHE/wheels/<key>
#        MMCV_FORCE_CUDA  1 to build the CUDA kernels (separate cache key)
set -euo pipefail
PY=${1:?usage: build_mmcv.sh PYTHON}
MMCV_VERSION=2.1.0
cuda=${MMCV_FORCE_CUDA:-0}
torch_ver=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
py_tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
flavour=cpu; [ "$cuda" = 1 ] && flavour=cuda
key="mmcv${MMCV_VERSION}-torch${torch_ver}-${flavour}-${py_tag}-$(uname -m)"
cache="${MMSPARSE_CACHE:-$HOME/.cache/mmsparse}/wheels/$key"
if ls "$cache"/mmcv-${MMCV_VERSION}-*.whl >/dev/null 2>&1; then
  echo "[build_mmcv] using cached wheel in $cache"
  exit 0
fi
echo "[build_mmcv] no cached mmcv wheel for $key"
echo "[build_mmcv] building mmcv ${MMCV_VERSION} with ops from source: this takes about 7-10 minutes on 2 cores, once."
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$src" "mmcv==${MMCV_VERSION}"
tar xzf "$src/mmcv-${MMCV_VERSION}.tar.gz" -C "$src"
sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$src/mmcv-${MMCV_VERSION}/setup.py"
mkdir -p "$cache.partial"
jobs=${MAX_JOBS:-$(nproc)}
(cd "$src/mmcv-${MMCV_VERSION}" && MMCV_WITH_OPS=1 FORCE_CUDA=$cuda MAX_JOBS=$jobs \
   "$PY" -m pip wheel -q --no-deps --no-build-isolation -w "$cache.partial" .)
# publish atomically so an interrupted build never leaves a half-written wheel in the cache
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"; mv "$cache.partial" "$cache"
echo "[build_mmcv] cached $(ls "$cache")"
