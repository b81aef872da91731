#!/usr/bin/python3
"""numpy and corun share arrays through POSIX shared memory, both ways.

Usage: python_interop.py INTEROP_HELPER

Run with Debian's /usr/bin/python3 (python3-numpy). Exits 77 (meson's skip) when numpy is
missing, 1 when a check fails.
"""
import os
import subprocess
import sys

try:
    import numpy as np
    from multiprocessing import resource_tracker, shared_memory
except ImportError as exc:
    print(f"skipping: {sys.executable} cannot import numpy / multiprocessing.shared_memory "
          f"({exc}); apt-get install python3-numpy")
    sys.exit(77)

HELPER = sys.argv[1]
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def run_helper(*args):
    return subprocess.run([HELPER, *args], capture_output=True, encoding="utf-8", timeout=60)


def open_untracked(name):
    """Opens an existing segment without Python's resource tracker unlinking it at exit."""
    try:
        return shared_memory.SharedMemory(name=name, track=False)  # Python >= 3.13
    except TypeError:
        shm = shared_memory.SharedMemory(name=name)
        resource_tracker.unregister(shm._name, "shared_memory")
        return shm


def numpy_to_corun_int64():
    name = f"corun_test_py_{os.getpid()}"
    n = 1000
    shm = shared_memory.SharedMemory(name=name, create=True, size=n * 8)
    try:
        a = np.ndarray((n,), dtype=np.int64, buffer=shm.buf)
        a[:] = np.arange(1, n + 1)
        del a
        r = run_helper("sum", name, str(n))
        check(r.returncode == 0 and r.stdout == f"sum={n * (n + 1) // 2}\n",
              f"corun attaches to numpy's int64 segment and sums it: {r.stdout!r} {r.stderr!r}")
        r = run_helper("sum", "/" + name, str(n))
        check(r.returncode == 0 and r.stdout == f"sum={n * (n + 1) // 2}\n",
              "the name with a leading slash names the same segment")
        r = run_helper("sum", name, str(n + 1))
        check(r.returncode == 3 and f"{n * 8} bytes" in r.stderr and f"needs {n * 8 + 8}" in r.stderr,
              f"a shape too large for numpy's segment gives both sizes: {r.stderr.strip()!r}")
    finally:
        shm.close()
        shm.unlink()
    check(not os.path.exists(f"/dev/shm/{name}"), "the borrower left numpy's segment to numpy")
    r = run_helper("sum", name, "1")
    check(r.returncode == 3 and name in r.stderr,
          f"a missing segment is named in the error: {r.stderr.strip()!r}")


def numpy_to_corun_strings():
    name = f"corun_test_py_str_{os.getpid()}"
    words = ["h\u00e9llo", "\u65e5\u672c", "abcdefgh", "", "\U0001F600"]
    check(np.dtype("<U8").itemsize == 32, "numpy's <U8 is 32 bytes, as DType says")
    shm = shared_memory.SharedMemory(name=name, create=True, size=len(words) * 32)
    try:
        a = np.ndarray((len(words),), dtype="<U8", buffer=shm.buf)
        a[:] = words
        del a
        r = run_helper("ustr", name, str(len(words)))
        check(r.returncode == 0 and r.stdout.split("\n")[:-1] == words,
              f"corun reads numpy's <U8 strings as FixedUString<8>: {r.stdout!r} {r.stderr!r}")
    finally:
        shm.close()
        shm.unlink()


def corun_to_numpy(dtype_code, shape):
    p = subprocess.Popen([HELPER, "serve", dtype_code, *map(str, shape)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, encoding="utf-8")
    try:
        fields = p.stdout.readline().split()
        check(len(fields) == 2 + len(shape), f"the helper announces its array: {fields}")
        if len(fields) != 2 + len(shape):
            return
        name, dtype = fields[0], np.dtype(fields[1])
        shape_read = tuple(int(d) for d in fields[2:])
        check(name.startswith(f"corun_{p.pid}_"), f"default name {name} carries the owner's pid")
        check(fields[1] == {"i8": "<i8", "f8": "<f8"}[dtype_code] == dtype.str,
              f"DType::str() {fields[1]} is numpy's dtype.str")
        check(shape_read == tuple(shape), f"shape {shape_read}")
        check(oct(os.stat(f"/dev/shm/{name}").st_mode & 0o777) == "0o600", "mode 0600")
        shm = open_untracked(name)
        size = int(np.prod(shape))
        a = np.ndarray(shape, dtype=dtype, buffer=shm.buf)
        expected = np.arange(1, size + 1, dtype=dtype).reshape(shape)
        check(np.array_equal(a, expected), f"numpy sees corun's {dtype.str} values in shape {shape}")
        a.flat[0] = -5  # and corun sees numpy's writes
        del a
        shm.close()
        out, _ = p.communicate("done\n", timeout=60)
        total = expected.sum() - 1 - 5
        want = f"sum={int(total)}\n" if dtype_code == "i8" else f"sum={float(total):g}\n"
        check(p.returncode == 0 and out == want, f"corun sees numpy's write: {out!r} (want {want!r})")
        check(not os.path.exists(f"/dev/shm/{name}"), "the owner removed its segment at exit")
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


numpy_to_corun_int64()
numpy_to_corun_strings()
corun_to_numpy("i8", [1000])
corun_to_numpy("f8", [3, 4])

if failures:
    print(f"{len(failures)} check(s) failed")
    sys.exit(1)
print("all checks passed")
