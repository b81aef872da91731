#!/usr/bin/env bash
# Installs what corun needs from Debian 12's packages (quiet when all is there), then
# configures and builds into ./build. Sourced by scripts/demo and scripts/test.
# CORUN_TARGETS: the Meson targets to build (space-separated, each with the targets it needs),
# everything when empty: scripts/demo builds the library and the demo, scripts/test everything.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

corun_packages=(g++ clang meson ninja-build pkg-config libasio-dev xtensor-dev libboost-dev
  libhwloc-dev catch2 librestinio-dev libfmt-dev libhttp-parser-dev nlohmann-json3-dev curl
  gnuplot-nox python3-numpy python3-matplotlib libcli11-dev libcpp-httplib-dev prometheus-cpp-dev
  python3-joblib libopenmpi-dev openmpi-bin python3-mpi4py libcereal-dev cmake doxygen)

missing=()
for p in "${corun_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "corun: installing ${missing[*]}" >&2
  as_root=()
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "corun: run as root or install: ${missing[*]}" >&2; exit 1; }
    as_root=(sudo)
  fi
  "${as_root[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

build_dir=${CORUN_BUILD_DIR:-build}
if [ ! -f "$build_dir/build.ninja" ]; then
  meson setup "$build_dir" ${CORUN_MESON_ARGS:-} >/dev/null
fi
read -ra corun_targets <<<"${CORUN_TARGETS:-}"
meson compile -C "$build_dir" -j 2 "${corun_targets[@]}" >/dev/null ||
  meson compile -C "$build_dir" -j 2 "${corun_targets[@]}"
