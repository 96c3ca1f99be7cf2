#!/usr/bin/env bash
# Build mmcv 2.1.0 *with ops* from its sdist once and cache the wheel; later installs reuse it.
#
# Why: mmcv publishes no wheel for torch 2.14, and torch 2.14's ATen headers refuse anything below
# C++20 while mmcv's setup.py hard-codes -std=c++14/17. We patch that flag and build without build
# isolation (the isolated env would pull setuptools>=82, which lacks pkg_resources).
#
# Speed: a plain build of the 77 CPU op sources took 1574 s on 2 cores, nearly all of it spent
# parsing the torch headers once per file and writing debug info. The compiles go through
# pch_cxx.sh, which parses the headers once into a precompiled header and drops -g (see there);
# MMSPARSE_MMCV_PLAIN=1 builds the old way (used to measure the difference).
#
# Usage: build_mmcv.sh PYTHON      (the interpreter of the target virtualenv; any path)
# Env:   MMSPARSE_CACHE      cache root (default ~/.cache/mmsparse); wheels go to $MMSPARSE_CACHE/wheels/<key>
#        MMCV_FORCE_CUDA     1 to build the CUDA kernels (separate cache key)
#        MAX_JOBS            parallel compiles (default: the number of cores)
# Prints the path of the cached wheel as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PY=${1:?usage: build_mmcv.sh PYTHON}
# every path handed on is absolute: the build below runs from inside the unpacked sdist
PY=$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")
[ -x "$PY" ] || { echo "[build_mmcv] error: interpreter $PY does not exist" >&2; exit 1; }
MMCV_VERSION=2.1.0
cuda=${MMCV_FORCE_CUDA:-0}
plain=${MMSPARSE_MMCV_PLAIN:-0}
torch_ver=$("$PY" -c 'import torch; print(torch.__version__.split("+")[0])')
py_tag=$("$PY" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
flavour=cpu; [ "$cuda" = 1 ] && flavour=cuda
key="mmcv${MMCV_VERSION}-torch${torch_ver}-${flavour}-${py_tag}-$(uname -m)"
cache_root=$(mkdir -p "${MMSPARSE_CACHE:-$HOME/.cache/mmsparse}" && cd "${MMSPARSE_CACHE:-$HOME/.cache/mmsparse}" && pwd)
cache="$cache_root/wheels/$key"

cached_wheel() {  # a wheel counts only if it is a complete zip (an interrupted copy is not)
  local w
  for w in "$cache"/mmcv-${MMCV_VERSION}-*.whl; do
    [ -f "$w" ] && "$PY" -m zipfile -t "$w" >/dev/null 2>&1 && { echo "$w"; return 0; }
  done
  return 1
}
if whl=$(cached_wheel); then
  echo "[build_mmcv] using cached wheel $whl"
  echo "$whl"
  exit 0
fi

echo "[build_mmcv] no cached mmcv wheel for $key: building mmcv ${MMCV_VERSION} with ops from source, once"
src=$(mktemp -d "${TMPDIR:-/tmp}/mmsparse-mmcv.XXXXXX")
log="$cache_root/logs/build_mmcv-$key.log"
mkdir -p "$(dirname "$log")"
watcher=''
cleanup() {
  [ -n "$watcher" ] && kill "$watcher" 2>/dev/null
  rm -rf "$src" "$cache.partial"
}
trap cleanup EXIT
trap 'echo "[build_mmcv] interrupted: nothing was cached; rerun the install to build again" >&2; exit 130' INT TERM

"$PY" -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$src" "mmcv==${MMCV_VERSION}"
tar xzf "$src/mmcv-${MMCV_VERSION}.tar.gz" -C "$src"
tree="$src/mmcv-${MMCV_VERSION}"
sed -i -E 's/-std=c\+\+1[47]/-std=c++20/g' "$tree/setup.py"
n_src=$(ls "$tree"/mmcv/ops/csrc/pytorch/*.cpp "$tree"/mmcv/ops/csrc/pytorch/cpu/*.cpp | wc -l)
jobs=${MAX_JOBS:-$(nproc)}

env_cxx=()
if [ "$plain" != 1 ]; then
  real_cxx=${CXX:-c++}
  if "$real_cxx" -v 2>&1 | grep -q '^gcc version'; then
    env_cxx=(CXX="$here/pch_cxx.sh" MMSPARSE_REAL_CXX="$real_cxx" MMSPARSE_PCH_DIR="$src/pch"
             MMSPARSE_PCH_LOG="$src/pch.log")
  else  # clang's PCH rules differ; only drop the debug info
    env_cxx=(CXX="$here/pch_cxx.sh" MMSPARSE_REAL_CXX="$real_cxx")
  fi
fi
echo "[build_mmcv] $n_src sources, $jobs parallel compiles ($([ "$plain" = 1 ] && echo plain build || echo precompiled torch headers, no debug info)); log: $log"

# progress: objects written so far, every 20 s, so a long build is never silent
t0=$(date +%s)
(
  while sleep 20; do
    done_n=$(find "$tree/build" -name '*.o' 2>/dev/null | wc -l)
    echo "[build_mmcv] compiled $done_n/$n_src sources, $(( $(date +%s) - t0 )) s elapsed"
  done
) &
watcher=$!

mkdir -p "$cache.partial"
rc=0
(cd "$tree" && env "${env_cxx[@]}" MMCV_WITH_OPS=1 FORCE_CUDA=$cuda MAX_JOBS=$jobs \
   "$PY" -m pip wheel -v --no-deps --no-build-isolation -w "$cache.partial" . >"$log" 2>&1) || rc=$?
if [ $rc -ge 128 ]; then  # killed by a signal (Ctrl-C): the EXIT trap removes the partial build
  echo "[build_mmcv] interrupted: nothing was cached; rerun the install to build again" >&2
  exit 130
elif [ $rc != 0 ]; then
  echo "[build_mmcv] error: the mmcv build failed after $(( $(date +%s) - t0 )) s. Last lines of $log:" >&2
  grep -E 'error|Error' "$log" | tail -15 >&2 || true
  tail -15 "$log" >&2
  exit 1
fi
kill "$watcher" 2>/dev/null; watcher=''
if [ -f "$src/pch.log" ]; then
  echo "[build_mmcv] precompiled header used for $(grep -c '^pch ' "$src/pch.log") of $(wc -l <"$src/pch.log") compiles"
fi
grep -q 'not a valid precompiled header\|cannot be used' "$log" && \
  echo "[build_mmcv] note: GCC refused the precompiled header for some files (correct, but slower); see $log"
echo "[build_mmcv] built in $(( $(date +%s) - t0 )) s"
# publish atomically so an interrupted build never leaves a half-written wheel in the cache
mkdir -p "$(dirname "$cache")"
rm -rf "$cache"
mv "$cache.partial" "$cache"
whl=$(cached_wheel) || { echo "[build_mmcv] error: no valid wheel in $cache after the build" >&2; exit 1; }
echo "[build_mmcv] cached $whl"
echo "$whl"
