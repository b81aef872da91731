#!/usr/bin/python3
"""corun::reduce::histogram bins values as numpy.histogram does, value by value.

Usage: histogram_numpy.py HISTOGRAM_BINS

Feeds HISTOGRAM_BINS (tests/interop/histogram_bins.cpp) ranges and values, edges included: every
numpy.linspace edge and its neighbours one ulp away, lo, hi, just outside them, NaN and
infinities, tiny, huge and negative ranges, then random ones; checks each value's bin and each
case's counts against numpy.histogram(values, bins, range=(lo, hi)) on the same values. Ranges
numpy cannot bin (a width that overflows, bins / width that overflows) must be refused.

Run with Debian's /usr/bin/python3 (python3-numpy). Exits 77 (meson's skip) when numpy is
missing, 1 when a check fails.
"""
import math
import random
import subprocess
import sys

try:
    import numpy as np
except ImportError as exc:
    print(f"skipping: {sys.executable} cannot import numpy ({exc}); apt-get install python3-numpy")
    sys.exit(77)

HELPER = sys.argv[1]
rng = random.Random(20261203)


def values_for(lo, hi, bins):
    edges = list(np.linspace(lo, hi, bins + 1))
    if len(edges) > 64:
        edges = edges[:8] + rng.sample(edges[8:-8], 48) + edges[-8:]
    values = [0.3, 0.6, 0.7, lo, hi, math.nextafter(lo, -math.inf), math.nextafter(hi, math.inf),
              (lo + hi) / 2, math.nan, math.inf, -math.inf]
    for e in edges:
        e = float(e)
        values += [e, math.nextafter(e, -math.inf), math.nextafter(e, math.inf)]
    values += [rng.uniform(lo, hi) for _ in range(100)]
    width = hi - lo
    values += [lo - rng.uniform(0, width), hi + rng.uniform(0, width)]
    return values


def numpy_bin(v, lo, hi, bins):
    counts = np.histogram([v], bins=bins, range=(lo, hi))[0]
    return str(int(np.argmax(counts))) if counts.sum() else "-"


def refused(lo, hi, bins):
    return (not (math.isfinite(lo) and math.isfinite(hi)) or not lo < hi or bins == 0
            or not math.isfinite(hi - lo) or not math.isfinite(bins / (hi - lo)))


fixed = [
    (0.0, 1.0, 10), (0.0, 1.0, 3), (0.0, 1.0, 7), (-1.0, 1.0, 2), (-10.0, -2.0, 7),
    (-1.0, 0.0, 10), (0.0, 60.0, 6), (0.1, 0.7, 6), (-5.0, 5.0, 1), (2.5, 1e6, 999),
    (1.0, 1.0 + 2.0 ** -40, 5), (1.0, math.nextafter(1.0, 2.0), 1), (1e-300, 2e-300, 10),
    (0.0, 1e-300, 10), (-1e-300, 0.0, 13), (-1e300, 1e300, 100), (-8.9e307, 8.9e307, 1000),
    (0.0, 1e308, 12345), (1e15, 1e15 + 64, 64), (-3e-8, -1e-8, 4097), (0.0, 1.0, 100000),
]
refused_ranges = [
    (-1e308, 1e308, 10), (-math.inf, 0.0, 10), (0.0, math.inf, 3), (math.nan, 1.0, 3),
    (0.0, 5e-324, 10), (0.0, 1e-310, 10), (1.0, 1.0, 4), (2.0, 1.0, 4), (0.0, 1.0, 0),
]
randoms = []
for _ in range(150):
    lo = rng.choice([0.0, 1.0, -1.0]) * 10 ** rng.uniform(-20, 20)
    width = 10 ** rng.uniform(-12, 12) * max(1.0, abs(lo))
    randoms.append((lo, lo + width, rng.choice([1, 2, 3, 5, 7, 10, 13, 100, 1000, 4097])))

cases = [(lo, hi, bins, values_for(lo, hi, bins)) for lo, hi, bins in fixed + randoms]
cases += [(lo, hi, bins, [0.0, 0.5, 1.0]) for lo, hi, bins in refused_ranges]
stdin = "".join(" ".join([repr(lo), repr(hi), str(bins)] + [repr(v) for v in values]) + "\n"
                for lo, hi, bins, values in cases)
run = subprocess.run([HELPER], input=stdin, capture_output=True, encoding="utf-8", timeout=120)
if run.returncode != 0:
    print(f"FAIL {HELPER} exited {run.returncode}: {run.stderr}")
    sys.exit(1)
lines = run.stdout.splitlines()

failures = []
checked = 0
at = 0
for lo, hi, bins, values in cases:
    what = f"range=({lo!r}, {hi!r}) bins={bins}"
    line = lines[at] if at < len(lines) else ""
    at += 1
    if refused(lo, hi, bins):
        if not line.startswith("invalid: corun::reduce::histogram: range ["):
            failures.append(f"{what}: expected a refusal naming the range, got {line[:200]!r}")
        continue
    if not line.startswith("bins:"):
        failures.append(f"{what}: refused: {line[:300]!r}")
        continue
    got = line.split()[1:]
    counts = lines[at].split()[1:] if at < len(lines) else []
    at += 1
    for v, b in zip(values, got):
        want = numpy_bin(v, lo, hi, bins)
        checked += 1
        if b != want:
            failures.append(f"{what}: value {v!r}: corun bin {b}, numpy bin {want}")
    if len(got) != len(values):
        failures.append(f"{what}: {len(got)} bins for {len(values)} values")
    want_counts = [str(int(c)) for c in np.histogram(values, bins=bins, range=(lo, hi))[0]]
    if counts != want_counts:
        failures.append(f"{what}: counts differ from numpy.histogram's")

print(f"{len(cases)} cases, {checked} values compared with numpy {np.__version__}")
for f in failures[:30]:
    print("FAIL " + f)
if failures:
    print(f"{len(failures)} failures")
    sys.exit(1)
print("ok: every value lands in numpy's bin; refused ranges are refused")
