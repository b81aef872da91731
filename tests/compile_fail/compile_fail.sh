#!/usr/bin/env bash
# A compile-time contract test: FILE must fail to compile with exactly one error, whose text
# contains the line `// expect: TEXT` of FILE; and FILE must compile with
# -DCORUN_COMPILE_FAIL_CONTROL (the correct variant), so the failure is the contract's and not
# a typo's. Flags come from the build tree's uninstalled corun.pc.
#
# Usage: compile_fail.sh BUILD_ROOT FILE
# Exit status: 0 on success, 1 on failure, 77 (meson's skip) when a tool is missing.
set -euo pipefail

build=$1
file=$2

for tool in g++ pkg-config; do
  if ! command -v "$tool" >/dev/null; then
    echo "skipping: $tool is not installed"
    exit 77
  fi
done

expect=$(sed -n 's|^// expect: ||p' "$file")
[[ -n $expect ]] || { echo "FAIL: $file has no '// expect: ' line" >&2; exit 1; }
cflags=$(PKG_CONFIG_PATH="$build/meson-uninstalled" pkg-config --cflags corun)
compile() {
  # shellcheck disable=SC2086  # pkg-config output is a list of words
  g++ -std=c++20 -Wall -Wextra -Werror -fsyntax-only $cflags "$@" "$file"
}

compile -DCORUN_COMPILE_FAIL_CONTROL || { echo "FAIL: the control variant does not compile" >&2; exit 1; }
if out=$(compile 2>&1); then
  echo "FAIL: $file compiled, but must not" >&2
  exit 1
fi
echo "$out"
errors=$(grep -c 'error:' <<<"$out" || true)
grep -qF -- "$expect" <<<"$out" || { echo "FAIL: the error does not say '$expect'" >&2; exit 1; }
[[ $errors == 1 ]] || { echo "FAIL: $errors errors, expected only the contract's one" >&2; exit 1; }
echo "failed to compile, as it must: $expect"
