#!/usr/bin/env bash
# Installs corun into a temporary DESTDIR, then builds and runs tests/consumer.cpp against it
# with `pkg-config --cflags --libs corun`; then does the same with the uninstalled .pc of the
# build tree (build/meson-uninstalled/).
#
# Usage: install_consumer.sh BUILD_ROOT SOURCE_ROOT [B_SANITIZE]
# Exit status: 0 on success, 1 on failure, 77 (meson's skip) when a tool is missing.
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

# build_and_run NAME PKG_CONFIG_PATH [pkg-config options...]: compiles the consumer with the
# flags pkg-config gives, runs it with the library directory it names, checks the output.
build_and_run() {
  local name=$1 pc_path=$2
  shift 2
  local cflags libs ldpath exe="$tmp/consumer_$name"
  cflags=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --cflags corun)
  libs=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --libs corun)
  ldpath=$(PKG_CONFIG_PATH=$pc_path pkg-config "$@" --libs-only-L corun | sed 's/-L//g; s/^ *//; s/ *$//; s/  */:/g')
  echo "$name: cflags: $cflags"
  echo "$name: libs: $libs"
  [[ -n $ldpath ]] || fail "$name: pkg-config names no library directory"
  # shellcheck disable=SC2086  # pkg-config output is a list of words
  g++ -std=c++20 "${san_flags[@]}" "$source/tests/consumer.cpp" -o "$exe" $cflags $libs ||
    fail "$name: the consumer does not compile against corun.pc"
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
build_and_run installed "$(dirname "$pc")" --define-variable=prefix="$tmp/root$prefix"

# 2. The uninstalled .pc of the build tree.
[[ -f "$build/meson-uninstalled/corun-uninstalled.pc" ]] || fail "no uninstalled corun.pc"
build_and_run uninstalled "$build/meson-uninstalled"

echo "install test passed"
