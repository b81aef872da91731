"""The README's first ```cpp block is a complete program: compile it against the built library
(the build tree's uninstalled corun.pc), run it, and check its exact output. Then the same text
with one task failing, which must exit 1 with the failure on stderr, never hang (a hang ends in
the timeout below and fails the test); and without CORUN_REGISTER_WORKER, which must give the
same output as written (the macro is optional).

The first ```cpp block of "Plain inputs" is a complete program too, whose coroutine passes
MapOptions<std::string> params in the form the README recommends for g++ 12 (a named local,
never a temporary inside the co_await): compiled with g++ at -O2 (the bug frees twice at -O0
and -O2 alike; the build's own -O level runs gcc12_map_params), it must print exactly the
lines the README shows.

Only the array size is changed (100'000'000 -> 1'000'000) so the test stays small; every change
is a literal replacement that must match exactly once, so an edit of the README that breaks a
replacement fails here instead of silently testing something else.

Usage: readme_example.py README BUILD_ROOT [B_SANITIZE]
Exit status: 0 on success, 1 on failure, 77 (meson's skip) when a tool is missing.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

TIMEOUT = 60  # seconds a run may take; the program needs well under one


def fail(message):
    print("FAIL: " + message, file=sys.stderr)
    sys.exit(1)


def replace_once(text, old, new):
    if text.count(old) != 1:
        fail(f"the README's example must contain {old!r} exactly once")
    return text.replace(old, new)


def first_cpp_block(readme):
    match = re.search(r"^```cpp\n(.*?)^```$", readme, re.S | re.M)
    if not match:
        fail("the README has no ```cpp block")
    return match.group(1)


def cpp_block_after(readme, heading):
    at = readme.find("\n" + heading + "\n")
    if at < 0:
        fail(f"the README has no heading {heading!r}")
    match = re.compile(r"^```cpp\n(.*?)^```$", re.S | re.M).search(readme, at)
    if not match:
        fail(f"the README has no ```cpp block after {heading!r}")
    return match.group(1)


MAP_HEADING = "## Plain inputs: async_map, imap, map_reduce"
MAP_OUTPUT = ("letters=9 longest=9 digit_sums=27000001\n"
              "from a worker process: shared\n"
              "from a worker process: memory\n"
              "from a worker process: worker\n"
              "from a worker process: processes\n")


def main():
    readme_path, build = sys.argv[1], sys.argv[2]
    sanitize = sys.argv[3] if len(sys.argv) > 3 else "none"
    for tool in ("g++", "pkg-config"):
        if shutil.which(tool) is None:
            print(f"skipping: {tool} is not installed")
            sys.exit(77)

    with open(readme_path, encoding="utf-8") as f:
        readme = f.read()
    source = first_cpp_block(readme)
    source = replace_once(source, "{100'000'000}", "{1'000'000}")
    map_source = cpp_block_after(readme, MAP_HEADING)
    # The form under test must be the one the README recommends, or this tests something else.
    replace_once(map_source, "corun::MapOptions<std::string> options{.params = ", "")
    replace_once(map_source, "std::move(options), asio::use_awaitable", "")

    env = dict(os.environ, PKG_CONFIG_PATH=os.path.join(build, "meson-uninstalled"))
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "corun"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    libdirs = [f[2:] for f in flags if f.startswith("-L")]
    if not libdirs:
        fail("pkg-config names no library directory")
    if sanitize not in ("", "none"):
        flags.append("-fsanitize=" + sanitize)
    run_env = dict(os.environ, LD_LIBRARY_PATH=":".join(libdirs))

    variants = {
        "as written": source,
        "a task throws": replace_once(
            source, "return xt::sum(slice)();",
            'if (slice.size() > 0) throw std::runtime_error("README test: a failing task");\n'
            "    return 0;"),
        "the worker is not registered": replace_once(source, "CORUN_REGISTER_WORKER(AddInts);",
                                                     ""),
    }
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, text in list(variants.items()) + [("the map block", map_source)]:
            cpp = os.path.join(tmp, "readme.cpp")
            exe = os.path.join(tmp, "readme_" + str(len(results)))
            with open(cpp, "w", encoding="utf-8") as f:
                f.write("#include <stdexcept>\n" + text)
            level = ["-O2"] if name == "the map block" else []
            compiled = subprocess.run(["g++", "-std=c++20"] + level + [cpp, "-o", exe] + flags,
                                      capture_output=True, text=True)
            if compiled.returncode != 0:
                fail(f"{name}: the README's example does not compile:\n{compiled.stderr}")
            try:
                ran = subprocess.run([exe], env=run_env, capture_output=True, text=True,
                                     timeout=TIMEOUT)
            except subprocess.TimeoutExpired:
                fail(f"{name}: the README's example hangs (no exit within {TIMEOUT} s)")
            print(f"{name}: exit {ran.returncode}\n  stdout: {ran.stdout!r}\n"
                  f"  stderr: {ran.stderr!r}")
            results[name] = ran

    ok = results["as written"]
    if ok.returncode != 0 or ok.stdout != "sum=500000500000 tasks=8\n" or ok.stderr:
        fail("as written: expected exit 0 and exactly 'sum=500000500000 tasks=8'")
    throws = results["a task throws"]
    if (throws.returncode != 1 or throws.stdout
            or not throws.stderr.startswith("error: ")
            or "README test: a failing task" not in throws.stderr):
        fail("a task throws: expected exit 1, nothing on stdout, and the task's message "
             "after 'error: ' on stderr")
    # The macro is optional: a worker type the orchestrator uses registers itself.
    unregistered = results["the worker is not registered"]
    if (unregistered.returncode != 0 or unregistered.stdout != "sum=500000500000 tasks=8\n"
            or unregistered.stderr):
        fail("the worker is not registered: expected the same output as written (the macro is "
             "optional)")
    mapped = results["the map block"]
    if mapped.returncode != 0 or mapped.stdout != MAP_OUTPUT or mapped.stderr:
        fail("the map block: expected exit 0, nothing on stderr, and exactly the README's lines:\n"
             + MAP_OUTPUT)
    print("the README's examples passed")


if __name__ == "__main__":
    main()
