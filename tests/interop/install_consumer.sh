#!/usr/bin/env bash
# Installs corun into a temporary DESTDIR, then builds and runs tests/interop/consumer.cpp against it
# with `pkg-config --cflags --libs corun`: with g++ -std=c++20, clang++ -std=c++20 (skipped,
# saying so, when clang++ is missing or the library is sanitized) and g++ -std=c++23, and checks
# that -std=c++17 fails with corun's message; then does the same with g++ -std=c++20 and the
# uninstalled .pc of the build tree (build/meson-uninstalled/). corun.pc sets no -std: the
# consumer picks its standard, the headers check it.
#
# Usage: install_consumer.sh BUILD_ROOT SOURCE_ROOT [B_SANITIZE]
# Exit status: 0 on success, 1 on failure, 77 (meson's skip) when a tool is missing (when only
# clang++ is, after every g++ check passed).
set -euo pipefail

build=$1
source=$2
sanitize=${3:-none}
expected="slices=7 sum=500500"

for tool in g++ pkg-config meson; do
  if ! command -v "$tool" >/dev/null; then
    echo "skipping: $tool is not installed"
    exit 77
  fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# A consumer built from a sanitized library must link the sanitizer runtime too.
san_flags=()
if [[ $sanitize != none && -n $sanitize ]]; then
  san_flags=("-fsanitize=$sanitize")
fi

# build_and_run NAME COMPILER STD PKG_CONFIG_PATH [pkg-config options...]: compiles the
# consumer with COMPILER -std=STD and the flags pkg-config gives, runs it with the library
# directory it names, checks the output.
build_and_run() {
  local name=$1 cxx=$2 std=$3 pc_path=$4
  shift 4
  local cflags libs ldpath exe="$tmp/consumer_$name"
  cflags=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --cflags corun)
  libs=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --libs corun)
  ldpath=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --libs-only-L corun | sed 's/-L//g; s/^ *//; s/ *$//; s/  */:/g')
  echo "$name: $cxx -std=$std, cflags: $cflags"
  echo "$name: libs: $libs"
  [[ -n $ldpath ]] || fail "$name: pkg-config names no library directory"
  [[ $cflags != *-std=* ]] || fail "$name: corun.pc forces a language standard: $cflags"
  # shellcheck disable=SC2086  # pkg-config output is a list of words
  "$cxx" -std="$std" "${san_flags[@]}" "$source/tests/interop/consumer.cpp" -o "$exe" $cflags $libs ||
    fail "$name: the consumer does not compile with $cxx -std=$std against corun.pc"
  # The consumer must load the library pkg-config pointed at, not some other copy.
  local loaded
  loaded=$(LD_LIBRARY_PATH=$ldpath ldd "$exe" | grep 'libcorun\.so' || true)
  echo "$name: loads $loaded"
  [[ $loaded == *"$ldpath"* ]] || fail "$name: the consumer does not load libcorun from $ldpath"
  local out
  out=$(LD_LIBRARY_PATH=$ldpath "$exe") || fail "$name: the consumer failed"
  [[ $out == "$expected" ]] || fail "$name: printed '$out', expected '$expected'"
  echo "$name: $out"
}

# 1. The installed copy.
DESTDIR="$tmp/root" meson install -C "$build" --no-rebuild --quiet
pc=$(find "$tmp/root" -name corun.pc -print -quit)
[[ -n $pc ]] || fail "meson install wrote no corun.pc"
prefix=$(sed -n 's/^prefix=//p' "$pc")
[[ -n $prefix ]] || fail "$pc has no prefix"
[[ -f "$tmp/root$prefix/include/corun/corun.hpp" ]] || fail "headers are not installed"
[[ ! -e "$tmp/root$prefix/include/corun/wire.hpp" ]] || fail "a private header was installed"
installed_pc=("$(dirname "$pc")" --define-variable=prefix="$tmp/root$prefix")
build_and_run installed g++ c++20 "${installed_pc[@]}"
build_and_run installed_cxx23 g++ c++23 "${installed_pc[@]}"
clang_missing=false
if ! command -v clang++ >/dev/null; then
  echo "installed_clang: SKIPPED: clang++ is not installed (apt-get install clang)"
  clang_missing=true
elif ((${#san_flags[@]})); then
  echo "installed_clang: SKIPPED: the library is built with g++'s sanitizer runtime"
else
  build_and_run installed_clang clang++ c++20 "${installed_pc[@]}"
fi
# Below C++20 the headers say what they need, before any other error.
# shellcheck disable=SC2046  # pkg-config output is a list of words
if errors=$(g++ -std=c++17 -fsyntax-only -x c++ - $(PKG_CONFIG_PATH=${installed_pc[0]} \
  pkg-config "${installed_pc[@]:1}" --cflags corun) <<<'#include <corun/corun.hpp>' 2>&1); then
  fail "a C++17 consumer compiled"
fi
[[ $errors == *"corun needs C++20 or later"* ]] ||
  fail "a C++17 consumer did not get corun's message: $(head -3 <<<"$errors")"
echo "c++17: refused with corun's message"

# 2. The uninstalled .pc of the build tree.
[[ -f "$build/meson-uninstalled/corun-uninstalled.pc" ]] || fail "no uninstalled corun.pc"
build_and_run uninstalled g++ c++20 "$build/meson-uninstalled"

if $clang_missing; then
  echo "install test passed with g++ only; skipping: clang++ is not installed"
  exit 77
fi
echo "install test passed"
