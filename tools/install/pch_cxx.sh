#!/usr/bin/env bash
# C++ compiler wrapper used only while tools/install/build_mmcv.sh builds mmcv's ops.
#
# Why: each of mmcv's ~77 op sources spends most of its compile time parsing the same ~350k lines of
# torch headers (`torch/types.h`). This wrapper parses them once into a GCC precompiled header (PCH)
# built with *exactly* the flags of the compile it serves, then force-includes it (`-include`) in every
# compile with those flags. Every source already includes `torch/types.h` first, through
# `pytorch_cpp_helper.hpp`, so the token stream each file sees is unchanged; the include guards make
# its own include a no-op. It also appends `-g0`: debug info doubles the compile time and GCC
# guarantees that -g never changes the generated code. Anything that is not a compile of a C++
# source (linking, `-v`, `--version`) goes straight to the real compiler.
#
# Env: MMSPARSE_REAL_CXX  the real compiler (default c++)
#      MMSPARSE_PCH_DIR   where PCHs live, one folder per flag set; unset = no PCH, only -g0
#      MMSPARSE_PCH_LOG   file that gets one line per compile: "pch SRC", "nopch SRC" (PCH unusable)
set -uo pipefail
real=${MMSPARSE_REAL_CXX:-c++}

src=''; compile=0; flags=()
skip_next=0
for a in "$@"; do
  if [ $skip_next = 1 ]; then skip_next=0; continue; fi
  case "$a" in
    -c) compile=1 ;;
    -o|-MF|-MT|-MQ) skip_next=1 ;;          # output/dependency file names differ per source
    -MMD|-MD) ;;
    *.cpp|*.cc|*.cxx) src=$a ;;
    *) flags+=("$a") ;;
  esac
done
if [ $compile = 0 ] || [ -z "$src" ]; then
  exec "$real" "$@"
fi

use_pch() {  # build (once per flag set, under a lock) and check the PCH; prints its header path
  [ -n "${MMSPARSE_PCH_DIR:-}" ] && command -v flock >/dev/null || return 1
  local key dir
  key=$(printf '%s\n' "$real" "${flags[@]}" | sha256sum | cut -c1-16)
  dir="$MMSPARSE_PCH_DIR/$key"
  mkdir -p "$dir" || return 1
  (
    flock 9
    [ -f "$dir/ok" ] && exit 0
    [ -f "$dir/failed" ] && exit 1
    printf '#include <torch/types.h>\n#include <vector>\n' >"$dir/mmcv_pch.hpp"
    if "$real" "${flags[@]}" -g0 -x c++-header "$dir/mmcv_pch.hpp" -o "$dir/mmcv_pch.hpp.gch.tmp" \
         >"$dir/build.log" 2>&1; then
      mv "$dir/mmcv_pch.hpp.gch.tmp" "$dir/mmcv_pch.hpp.gch" && touch "$dir/ok"
    else
      touch "$dir/failed"; exit 1
    fi
  ) 9>"$dir/lock" || return 1
  echo "$dir/mmcv_pch.hpp"
}

log() { [ -n "${MMSPARSE_PCH_LOG:-}" ] && echo "$1 $src" >>"$MMSPARSE_PCH_LOG"; return 0; }

if header=$(use_pch); then
  log pch
  # -Winvalid-pch: should GCC still refuse the PCH, the build log says so (the compile stays correct)
  exec "$real" -Winvalid-pch -include "$header" "$@" -g0
fi
log nopch
exec "$real" "$@" -g0
