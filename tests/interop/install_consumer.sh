#!/usr/bin/env bash
# Installs corun into a temporary DESTDIR, then builds and runs consumers against it:
# - tests/interop/consumer.cpp with `pkg-config --cflags --libs corun`: g++ -std=c++20, clang++
#   -std=c++20 (skipped, saying so, when clang++ is missing or the library is sanitized) and g++
#   -std=c++23; -std=c++17 must fail with corun's message; then g++ -std=c++20 against the
#   uninstalled .pc of the build tree (build/meson-uninstalled/). corun.pc sets no -std: the
#   consumer picks its standard, the headers check it.
# - corun.pc asks only for what the public headers need: `pkg-config --cflags --libs corun` works
#   where only corun's and xtensor's .pc files exist (no hwloc, no nlohmann_json), and sets no
#   -DASIO_NO_DEPRECATED.
# - tests/interop/asio_first.cpp (Asio included before corun, asio::io_service) with g++ and
#   clang++; without corun's flags, clang++ fails with corun's message naming the fix.
# - tests/interop/cmake_consumer, a CMake project with find_package(corun) and corun::corun (and,
#   where corun_mpi is installed, COMPONENTS mpi and corun::corun_mpi, run under mpirun with 2
#   ranks, as is the same program built through corun_mpi.pc).
#
# Usage: install_consumer.sh BUILD_ROOT SOURCE_ROOT [B_SANITIZE]
# Exit status: 0 on success, 1 on failure, 77 (meson's skip) when a tool is missing (when only
# clang++ or cmake is, after every other check passed).
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

# 1. The installed copy, through corun.pc.
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

# 2. corun.pc asks only for what the public headers need: with pkg-config seeing nothing but
# corun's and xtensor's .pc files (no hwloc, no nlohmann_json), it still answers, and it leaves
# Asio's deprecated API to the consumer.
only_needed="$tmp/pc-only"
mkdir -p "$only_needed"
cp "${installed_pc[0]}"/corun*.pc "$only_needed/"
for needed in xtensor xtl; do
  cp "$(pkg-config --variable=pcfiledir "$needed")/$needed.pc" "$only_needed/" ||
    fail "no $needed.pc on this machine (apt-get install xtensor-dev)"
done
minimal_flags=$(PKG_CONFIG_LIBDIR=$only_needed pkg-config "${installed_pc[@]:1}" --cflags --libs corun) ||
  fail "pkg-config corun needs more than the public headers need: $(PKG_CONFIG_LIBDIR=$only_needed \
    pkg-config --print-requires-private corun | tr '\n' ' ')"
echo "only-needed: $minimal_flags"
[[ $minimal_flags != *ASIO_NO_DEPRECATED* ]] || fail "corun.pc forces -DASIO_NO_DEPRECATED"

# 3. An Asio application's include order (Asio first) and its deprecated spelling: with corun's
# flags it compiles with g++ and clang++; without them clang++ stops at corun's own message.
expected_squares="sum_of_squares=338350"
installed_cflags=$(PKG_CONFIG_PATH=${installed_pc[0]} pkg-config "${installed_pc[@]:1}" --cflags corun)
installed_libs=$(PKG_CONFIG_PATH=${installed_pc[0]} pkg-config "${installed_pc[@]:1}" --libs corun)
installed_libdir=$(PKG_CONFIG_PATH=${installed_pc[0]} pkg-config "${installed_pc[@]:1}" --variable=libdir corun)
asio_first_compilers=(g++)
$clang_missing || ((${#san_flags[@]})) || asio_first_compilers+=(clang++)
for cxx in "${asio_first_compilers[@]}"; do
  exe="$tmp/asio_first_$cxx"
  # shellcheck disable=SC2086  # pkg-config output is a list of words
  "$cxx" -std=c++20 "${san_flags[@]}" "$source/tests/interop/asio_first.cpp" -o "$exe" \
    $installed_cflags $installed_libs || fail "asio_first does not compile with $cxx"
  out=$(LD_LIBRARY_PATH=$installed_libdir "$exe") || fail "asio_first ($cxx) failed"
  [[ $out == "$expected_squares" ]] || fail "asio_first ($cxx) printed '$out'"
  echo "asio_first ($cxx, Asio included first, asio::io_service): $out"
done
if ! $clang_missing; then
  include_dir=$(PKG_CONFIG_PATH=${installed_pc[0]} pkg-config "${installed_pc[@]:1}" --variable=includedir corun)
  if errors=$(clang++ -std=c++20 -fsyntax-only -I"$include_dir" \
    "$source/tests/interop/asio_first.cpp" 2>&1); then
    fail "Asio first, without corun's flags, compiled with clang++: corun's check is missing"
  fi
  [[ $errors == *"corun: Asio was included before corun"*"ASIO_HAS_CO_AWAIT"* ]] ||
    fail "Asio first without corun's flags: clang++ did not give corun's message: $(head -3 <<<"$errors")"
  echo "asio_first (clang++, no corun flags): refused with corun's message"
fi

# 4. corun_mpi, where it was built: through corun_mpi.pc, run under mpirun with 2 ranks.
mpi_installed=false
[[ -f ${installed_pc[0]}/corun_mpi.pc ]] && mpi_installed=true
if $mpi_installed; then
  mpi_exe="$tmp/mpi_consumer_pc"
  # shellcheck disable=SC2046,SC2086  # pkg-config output is a list of words
  g++ -std=c++20 "${san_flags[@]}" "$source/tests/interop/mpi_consumer.cpp" -o "$mpi_exe" \
    $(PKG_CONFIG_PATH=${installed_pc[0]} pkg-config "${installed_pc[@]:1}" --cflags --libs corun_mpi) ||
    fail "the corun_mpi consumer does not compile against corun_mpi.pc"
  LD_LIBRARY_PATH=$installed_libdir "$source/tests/cluster/mpirun_test.sh" 2 "$mpi_exe" \
    --expect "ranks=2 sum=500500" || fail "the corun_mpi consumer (pkg-config) failed under mpirun"
  echo "corun_mpi.pc: ranks=2 sum=500500"
elif [[ -n $(find "$tmp/root" -name 'libcorun_mpi.so*' -print -quit) ]]; then
  fail "libcorun_mpi is installed without corun_mpi.pc"
fi

# 5. A CMake project: find_package(corun CONFIG REQUIRED), corun::corun, corun::corun_mpi.
cmake_missing=false
if ! command -v cmake >/dev/null; then
  echo "cmake: SKIPPED: cmake is not installed (apt-get install cmake)"
  cmake_missing=true
else
  cmake_build="$tmp/cmake"
  cmake -S "$source/tests/interop/cmake_consumer" -B "$cmake_build" -G Ninja \
    -DCMAKE_PREFIX_PATH="$tmp/root$prefix" -DWITH_MPI="$($mpi_installed && echo ON || echo OFF)" \
    -DCMAKE_CXX_FLAGS="${san_flags[*]}" -DCMAKE_BUILD_TYPE=Release >"$tmp/cmake.log" 2>&1 ||
    fail "cmake could not configure the consumer: $(cat "$tmp/cmake.log")"
  grep 'corun 0' "$tmp/cmake.log" || true
  cmake --build "$cmake_build" >"$tmp/cmake-build.log" 2>&1 ||
    fail "the CMake consumer does not build: $(tail -20 "$tmp/cmake-build.log")"
  # CMake links the imported library by path and records its directory as RUNPATH; meson test's
  # own LD_LIBRARY_PATH (the build tree) would take precedence, so it is dropped here.
  no_ld_path=(env -u LD_LIBRARY_PATH)
  loaded=$("${no_ld_path[@]}" ldd "$cmake_build/consumer" | grep 'libcorun\.so' || true)
  [[ $loaded == *"$tmp/root"* ]] || fail "the CMake consumer does not load the installed libcorun: $loaded"
  out=$("${no_ld_path[@]}" "$cmake_build/consumer") || fail "the CMake consumer failed"
  [[ $out == "$expected" ]] || fail "the CMake consumer printed '$out', expected '$expected'"
  out=$("${no_ld_path[@]}" "$cmake_build/asio_first") || fail "the CMake asio_first failed"
  [[ $out == "$expected_squares" ]] || fail "the CMake asio_first printed '$out'"
  echo "cmake (corun::corun): $expected, $expected_squares"
  if $mpi_installed; then
    "${no_ld_path[@]}" "$source/tests/cluster/mpirun_test.sh" 2 "$cmake_build/mpi_consumer" \
      --expect "ranks=2 sum=500500" || fail "the CMake corun_mpi consumer failed under mpirun"
    echo "cmake (corun::corun_mpi): ranks=2 sum=500500"
  fi
  # A component that was not built must say so, not fail later at link time.
  if ! $mpi_installed; then
    ! cmake -S "$source/tests/interop/cmake_consumer" -B "$tmp/cmake-mpi" \
      -DCMAKE_PREFIX_PATH="$tmp/root$prefix" -DWITH_MPI=ON >"$tmp/cmake-mpi.log" 2>&1 ||
      fail "find_package(corun COMPONENTS mpi) succeeded without corun_mpi"
    grep -q "component mpi is missing" "$tmp/cmake-mpi.log" ||
      fail "find_package(corun COMPONENTS mpi) failed without corun's message"
  fi
  # The version file follows the SONAME: a project asking for 0.2 (or 1.0) is refused by 0.1.
  for wanted in 0.2 1.0; do
    ! cmake -S "$source/tests/interop/cmake_consumer" -B "$tmp/cmake-$wanted" \
      -DCMAKE_PREFIX_PATH="$tmp/root$prefix" -DCORUN_REQUIRED_VERSION=$wanted \
      >"$tmp/cmake-$wanted.log" 2>&1 || fail "find_package(corun $wanted) accepted corun 0.1"
  done
  echo "cmake: find_package(corun 0.2) and (corun 1.0) refused by 0.1, as the SONAME says"
fi

# 6. The uninstalled .pc of the build tree.
[[ -f "$build/meson-uninstalled/corun-uninstalled.pc" ]] || fail "no uninstalled corun.pc"
build_and_run uninstalled g++ c++20 "$build/meson-uninstalled"

if $clang_missing || $cmake_missing; then
  echo "install test passed without $($clang_missing && echo clang++) $($cmake_missing && echo cmake); skipping: not installed"
  exit 77
fi
echo "install test passed"
