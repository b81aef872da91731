#!/usr/bin/python3
"""corun::reduce::moments and reduce::mean agree with numpy.mean and numpy.var to 1e-12 relative.

Usage: moments_numpy.py MOMENTS_DATA

Runs MOMENTS_DATA (tests/interop/moments_data.cpp) in a temporary directory: it writes each
deterministic data set there (a million values near 1, values near 1e9, negative, mixed-sign,
tiny and integer values, two values, one value), reduces it with async_map_reduce on a real
pool, and prints count, mean, variance (ddof 0 and 1) and reduce::mean's mean. Reads the same
values with numpy.fromfile and checks each number against numpy.mean and numpy.var(ddof=0, 1)
to 1e-12 relative (NaN where numpy gives NaN: the variance of one value with ddof 1).

Run with Debian's /usr/bin/python3 (python3-numpy). Exits 77 (meson's skip) when numpy is
missing, 1 when a check fails.
"""
import math
import subprocess
import sys
import tempfile
import warnings

try:
    import numpy as np
except ImportError as exc:
    print(f"skipping: {sys.executable} cannot import numpy ({exc}); apt-get install python3-numpy")
    sys.exit(77)

HELPER = sys.argv[1]
EXPECTED_SETS = {"uniform_1m", "offset_1e9", "negative", "mixed_sign", "tiny", "integers", "two",
                 "one"}


def close(got, want):
    if math.isnan(want):
        return math.isnan(got)
    return abs(got - want) <= 1e-12 * abs(want)


failures = []
seen = set()
with tempfile.TemporaryDirectory() as tmp:
    run = subprocess.run([HELPER, tmp], capture_output=True, encoding="utf-8", timeout=300)
    if run.returncode != 0:
        print(f"FAIL {HELPER} exited {run.returncode}: {run.stderr}")
        sys.exit(1)
    for line in run.stdout.splitlines():
        name, count, mean, var0, var1, mean_only = line.split()
        seen.add(name)
        values = np.fromfile(f"{tmp}/{name}.f8", dtype="<f8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # var(ddof=1) of one value
            want = {"mean": float(np.mean(values)), "var ddof=0": float(np.var(values)),
                    "var ddof=1": float(np.var(values, ddof=1)),
                    "reduce::mean": float(np.mean(values))}
        got = {"mean": float(mean), "var ddof=0": float(var0), "var ddof=1": float(var1),
               "reduce::mean": float(mean_only)}
        if int(count) != values.size:
            failures.append(f"{name}: count {count}, numpy has {values.size} values")
        for key, w in want.items():
            if not close(got[key], w):
                rel = abs(got[key] - w) / abs(w) if w else math.inf
                failures.append(f"{name}: {key} {got[key]!r}, numpy {w!r} (relative {rel:.3g})")
        print(f"{name}: {values.size} values, mean {float(mean):.17g}, var {float(var0):.17g}")
if seen != EXPECTED_SETS:
    failures.append(f"data sets {sorted(seen)}, expected {sorted(EXPECTED_SETS)}")
for f in failures:
    print("FAIL " + f)
if failures:
    sys.exit(1)
print(f"ok: {len(seen)} data sets agree with numpy {np.__version__} to 1e-12 relative")
