#!/usr/bin/python3
"""Runs corun_bench and python_baseline.py, prints corun against Python with ratios, and the
targets of issue 6 as PASS/MISS lines.

    /usr/bin/python3 tests/bench/compare.py [--quick] [--corun BUILD/tests/bench/corun_bench]
        [--python-baseline tests/bench/python_baseline.py] [--cost-csv PATH] [--save DIR]
        [--corun-json FILE] [--python-json FILE]

Without --corun the benchmark is looked for in build/ beside this checkout. --corun-json and
--python-json reuse saved outputs (a file whose last line is the JSON object) instead of running
the programs; --save DIR keeps both outputs as DIR/corun.txt and DIR/python.txt. Exits 0 when
both ran (whatever the targets say; --strict: 1 when one is missed), 77 when numpy is missing.
"""

import argparse
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent

# (key, unit, higher is better)
COMMON = [
    ("empty_task_rtt_us_p50", "us", False),
    ("empty_task_rtt_us_p99", "us", False),
    ("empty_tasks_per_s", "/s", True),
    ("sum100m_ms", "ms", False),
    ("sum100m_serial_ms", "ms", False),
    ("compute_ms", "ms", False),
    ("compute_serial_ms", "ms", False),
    ("pool_start_fork_ms", "ms", False),
    ("pool_start_spawn_ms", "ms", False),
]


def last_json(text, who):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise SystemExit(f"compare: no JSON line in the output of {who}")


def run(cmd, who, save):
    print(f"compare: running {' '.join(map(str, cmd))}", file=sys.stderr, flush=True)
    proc = subprocess.run(list(map(str, cmd)), stdout=subprocess.PIPE, text=True)
    if proc.returncode == 77:
        print(proc.stdout, end="")
        raise SystemExit(77)
    if proc.returncode != 0:
        print(proc.stdout, end="")
        raise SystemExit(f"compare: {who} exited with {proc.returncode}")
    if save:
        (save / f"{who}.txt").write_text(proc.stdout)
    return proc.stdout


def find_corun_bench():
    for build in sorted(ROOT.glob("build*")):
        exe = build / "tests" / "bench" / "corun_bench"
        if exe.is_file():
            return exe
    raise SystemExit("compare: corun_bench not found under build*/tests/bench/; pass --corun")


def fmt(v):
    if v is None:
        return "-"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def targets(c, p):
    """(description, passed or None when not measured, detail) for each target of issue 6."""

    def ratio(a, b):
        return None if a is None or b is None or b == 0 else a / b

    out = []

    def add(desc, value, limit, detail, higher=False):
        if value is None:
            out.append((desc, None, "not measured"))
        else:
            ok = value >= limit if higher else value <= limit
            out.append((desc, ok, detail))

    r = ratio(c.get("empty_task_rtt_us_p50"), c.get("socketpair_rtt_us"))
    add("empty_task_rtt_us_p50 <= 1.5 x socketpair_rtt_us", r, 1.5,
        f"{fmt(c.get('empty_task_rtt_us_p50'))} us vs {fmt(c.get('socketpair_rtt_us'))} us: "
        f"{fmt(r)} x")
    r = ratio(c.get("empty_tasks_per_s"), p.get("empty_tasks_per_s"))
    add("empty_tasks_per_s >= 20 x Python's", r, 20,
        f"{fmt(c.get('empty_tasks_per_s'))} /s vs {fmt(p.get('empty_tasks_per_s'))} /s: "
        f"{fmt(r)} x", higher=True)
    r = ratio(c.get("sum100m_ms"), c.get("sum100m_threads_ms"))
    add("sum100m_ms <= 1.25 x sum100m_threads_ms", r, 1.25,
        f"{fmt(c.get('sum100m_ms'))} ms vs {fmt(c.get('sum100m_threads_ms'))} ms: {fmt(r)} x")
    r = ratio(c.get("compute_ms"), c.get("compute_threads_ms"))
    add("compute_ms <= 1.05 x compute_threads_ms", r, 1.05,
        f"{fmt(c.get('compute_ms'))} ms vs {fmt(c.get('compute_threads_ms'))} ms: {fmt(r)} x")
    v = c.get("monitor_overhead_pct")
    add("monitor_overhead_pct <= 0.5", v, 0.5, f"{fmt(v)} % of one core")
    v = c.get("pool_start_fork_ms")
    add("pool_start_fork_ms <= 10", v, 10, f"{fmt(v)} ms")
    v = c.get("rss_growth_10m_slices_mb")
    slices = c.get("rss_slices")
    over = "" if slices in (None, 10_000_000) else f" (over {slices:.0f} slices, not 10M)"
    add("rss_growth_10m_slices_mb <= 16", v, 16, f"{fmt(v)} MB{over}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="run both with --quick")
    ap.add_argument("--corun", type=pathlib.Path, help="the corun_bench executable")
    ap.add_argument("--python-baseline", type=pathlib.Path, default=HERE / "python_baseline.py")
    ap.add_argument("--python", default="/usr/bin/python3", help="interpreter with numpy")
    ap.add_argument("--cost-csv", type=pathlib.Path, help="passed on to corun_bench")
    ap.add_argument("--corun-json", type=pathlib.Path, help="saved corun_bench --json output")
    ap.add_argument("--python-json", type=pathlib.Path, help="saved python_baseline --json output")
    ap.add_argument("--save", type=pathlib.Path, help="directory for both programs' outputs")
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []

    if args.corun_json:
        corun = last_json(args.corun_json.read_text(), args.corun_json)
    else:
        cmd = [args.corun or find_corun_bench(), *quick, "--json"]
        if args.cost_csv:
            cmd += ["--cost-csv", args.cost_csv]
        corun = last_json(run(cmd, "corun", args.save), "corun_bench")
    if args.python_json:
        python = last_json(args.python_json.read_text(), args.python_json)
    else:
        cmd = [args.python, args.python_baseline, *quick, "--json"]
        python = last_json(run(cmd, "python", args.save), "python_baseline.py")

    if corun.get("quick") != python.get("quick"):
        print("compare: warning: one run is --quick and the other is not", file=sys.stderr)
    print(f"corun vs Python (ProcessPoolExecutor + shared_memory + numpy), "
          f"{corun.get('workers', 2):.0f} workers{', --quick' if corun.get('quick') else ''}")
    print(f"{'measurement':27} {'unit':5} {'corun':>12} {'python':>12} {'corun better by':>16}")
    for key, unit, higher in COMMON:
        c, p = corun.get(key), python.get(key)
        if c is None and p is None:
            continue
        better = None
        if c and p:
            better = c / p if higher else p / c
        shown = "-" if better is None else f"{better:.1f} x"
        print(f"{key:27} {unit:5} {fmt(c):>12} {fmt(p):>12} {shown:>16}")
    # Per element, the kernels differ (numpy's vectorised transcendental functions against scalar
    # libm in C++); what each framework adds shows in its speed-up over its own serial pass.
    for what, pool_key, serial_key in [
        ("sum speed-up vs serial", "sum100m_ms", "sum100m_serial_ms"),
        ("compute speed-up vs serial", "compute_ms", "compute_serial_ms"),
    ]:
        c = corun[serial_key] / corun[pool_key] if corun.get(pool_key) else None
        p = python[serial_key] / python[pool_key] if python.get(pool_key) else None
        shown = "-" if c is None or p is None else f"{c / p:.1f} x"
        print(f"{what:27} {'x':5} {fmt(c):>12} {fmt(p):>12} {shown:>16}")
    print()
    print("corun against its in-process baselines (same run)")
    for key, base in [
        ("empty_task_rtt_us_p50", "socketpair_rtt_us"),
        ("empty_run_rtt_us_p50", "socketpair_rtt_us"),
        ("sum100m_ms", "sum100m_threads_ms"),
        ("sum100m_ms", "sum100m_serial_ms"),
        ("compute_ms", "compute_threads_ms"),
        ("compute_ms", "compute_serial_ms"),
    ]:
        c, b = corun.get(key), corun.get(base)
        ratio = f"{c / b:.2f}" if c is not None and b else "-"
        print(f"{key:24} {fmt(c):>10}  /  {base:22} {fmt(b):>10}  = {ratio}")
    print()
    print("targets (issue 6)")
    missed = 0
    for desc, ok, detail in targets(corun, python):
        word = "PASS" if ok else "MISS"
        missed += not ok
        print(f"{word} {desc:52} {detail}")
    return 1 if args.strict and missed else 0


if __name__ == "__main__":
    sys.exit(main())
