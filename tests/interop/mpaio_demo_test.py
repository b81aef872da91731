"""Runs examples/mpaio_demo and checks its exact output and CSV files.

Usage: mpaio_demo_test.py MPAIO_DEMO
"""
import csv
import os
import re
import subprocess
import sys
import tempfile

demo = sys.argv[1]
expected_concat = "".join(f"foo_{i}" for i in range(100))
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


with tempfile.TemporaryDirectory(prefix="corun_test_demo_") as tmp:
    cpu_csv, tasks_csv = os.path.join(tmp, "cpu.csv"), os.path.join(tmp, "tasks.csv")
    for n, parts, workers, rounds in [(1_000_000, 8, 2, 0), (999_983, 7, 1, 8), (10, 13, 3, 3)]:
        run = subprocess.run([demo, "--n", str(n), "--partitions", str(parts), "--workers",
                              str(workers), "--rounds", str(rounds), "--cpu-csv", cpu_csv,
                              "--tasks-csv", tasks_csv],
                             capture_output=True, encoding="utf-8", timeout=100)
        check(run.returncode == 0, f"n={n}: exit code 0 (stderr: {run.stderr.strip()!r})")
        lines = run.stdout.splitlines()
        check(len(lines) == 4, f"n={n}: exactly four lines on stdout, got {lines!r}")
        if len(lines) != 4:
            continue
        check(lines[0] == f"sum={n * (n + 1) // 2}", f"n={n}: {lines[0]}")
        check(lines[1] == f"concat={expected_concat}", f"n={n}: concat in slice order")
        check(re.fullmatch(r"run_seconds=[0-9.e+-]+", lines[2]) is not None, lines[2])
        check(re.fullmatch(r"samples=[0-9]+", lines[3]) is not None, lines[3])
        with open(tasks_csv, newline="") as f:
            tasks = list(csv.DictReader(f))
        check(len(tasks) == min(parts, n) + 8, f"n={n}: one task row per slice ({len(tasks)})")
        check(all(t["outcome"] == "ok" for t in tasks), f"n={n}: every task ok")
        with open(cpu_csv, newline="") as f:
            header = next(csv.reader(f))
        check(header[0] == "time_s" and all(h.startswith("cpu") for h in header[1:]),
              f"n={n}: cpu CSV header {header}")

    # The default run, the README's: the same exact results, and a picture worth drawing, with
    # samples enough and every worker process busy. Checked on what the demo itself records, not
    # on the machine's load: a PU's busy share counts other programs too, and a loaded machine
    # only makes the run, and so its samples, longer.
    run = subprocess.run([demo, "--cpu-csv", cpu_csv, "--tasks-csv", tasks_csv],
                         capture_output=True, encoding="utf-8", timeout=100)
    lines = run.stdout.splitlines()
    check(run.returncode == 0 and len(lines) == 4,
          f"default: exit 0 and four lines (got {run.returncode}, {len(lines)} lines, stderr "
          f"{run.stderr.strip()!r})")
    if run.returncode == 0 and len(lines) == 4:
        n = 100_000_000
        check(lines[0] == f"sum={n * (n + 1) // 2}", f"default: {lines[0]}")
        check(lines[1] == f"concat={expected_concat}", "default: concat in slice order")
        run_seconds = float(lines[2].removeprefix("run_seconds="))
        samples = int(lines[3].removeprefix("samples="))
        check(samples >= 20, f"default: at least 20 CPU samples ({samples} in {run_seconds} s)")
        with open(cpu_csv, newline="") as f:
            rows = list(csv.reader(f))
        header, rows = rows[0], rows[1:]
        check(len(rows) == samples, f"default: one cpu.csv row per sample ({len(rows)})")
        pus = len(os.sched_getaffinity(0))
        check(header[0] == "time_s" and len(header) == 1 + pus and
              all(len(r) == len(header) for r in rows),
              f"default: a cpu.csv column per PU, {pus} ({header})")
        times = [float(r[0]) for r in rows]
        # The monitor drops ticks a busy loop missed, so samples are at least 10 ms apart.
        check(all(b - a >= 0.010 - 1e-6 for a, b in zip(times, times[1:])),
              f"default: samples at least 10 ms apart ({times[:2]} .. {times[-1:]})")
        with open(tasks_csv, newline="") as f:
            tasks = list(csv.DictReader(f))
        check(len(tasks) == 16 + 8 and all(t["outcome"] == "ok" for t in tasks),
              f"default: one tasks.csv row per task, 16 + 8, all ok ({len(tasks)})")
        # The worker processes that summed spent most of the run inside their tasks (dispatch
        # takes microseconds, a task a fair share of the run), and the PUs were busy: the mean
        # over the samples of the busy shares summed over PUs is at least half a PU per such
        # worker. Other programs only add to that share, and load only lengthens the run.
        summing = {t["pid"] for t in tasks if t["worker"] == "AddIntWorker"}
        in_tasks = sum(float(t["t_end"]) - float(t["t_start"]) for t in tasks
                       if t["worker"] == "AddIntWorker")
        check(len(summing) >= min(2, pus) and in_tasks > 0.5 * len(summing) * run_seconds,
              f"default: {len(summing)} workers summed, {in_tasks:.3f} s in their tasks over "
              f"a {run_seconds:.3f} s run")
        busy = sum(sum(float(v) for v in r[1:]) for r in rows) / max(len(rows), 1)
        check(busy > 50 * min(len(summing), pus),
              f"default: {busy:.0f} % of a PU busy on average, summed over PUs")

    # --insights: the four lines, then one row per worker process, the totals and the
    # efficiency. The demo waits for its workers before the run, so each has its start-up
    # and init times; its 16 + 8 slices are all counted.
    run = subprocess.run([demo, "--n", "1000000", "--workers", "2", "--insights"],
                         capture_output=True, encoding="utf-8", timeout=100)
    lines = run.stdout.splitlines()
    check(run.returncode == 0 and len(lines) == 4 + 1 + 2 + 2,
          f"--insights: exit 0 and 4 + 5 lines (got {run.returncode}, {lines!r})")
    if len(lines) == 9:
        check(lines[4].split() == ["worker", "pid", "start-up", "ms", "init", "ms", "tasks",
                                   "working", "ms", "waiting", "ms"], f"header: {lines[4]!r}")
        rows = [line.split() for line in lines[5:7]]
        check([r[0] for r in rows] == ["0", "1"] and all(len(r) == 7 for r in rows)
              and all(re.fullmatch(r"[0-9]+\.[0-9]", c) for r in rows for c in r[2:4] + r[5:]),
              f"one row per worker, every time known: {rows!r}")
        total = lines[7].split()
        check(total[0] == "total" and total[1] == "24" and
              sum(int(r[4]) for r in rows) == 24, f"24 tasks in all: {lines[7]!r}")
        check(re.fullmatch(r"efficiency [0-9.]+% \(working / \(2 workers x [0-9.]+ ms wall\)\)",
                           lines[8]) is not None, lines[8])

    # Bad command lines: CLI11's message and exit code 2, as in every corun example and bench.
    hint = "Run with --help for more information.\n"
    for args, message in [
        (["--partitions", "0"], "--partitions: Value 0 not in range 1 to 1099511627776\n"),
        (["--n", "x"], "--n: Value x not in range 0 to 1099511627776\n"),
        (["--bogus"], "The following argument was not expected: --bogus\n"),
        (["--plot", "cpu.png"], "--plot requires --cpu-csv\n"),
    ]:
        bad = subprocess.run([demo] + args, capture_output=True, encoding="utf-8")
        check(bad.returncode == 2 and bad.stderr == message + hint and bad.stdout == "",
              f"{args} is rejected with exit 2 and exactly {message.strip()!r} "
              f"(got {bad.returncode}, {bad.stderr!r})")
    usage = subprocess.run([demo, "--help"], capture_output=True, encoding="utf-8")
    check(usage.returncode == 0 and "--tasks-csv TEXT" in usage.stdout and "--insights" in
          usage.stdout and usage.stderr == "",
          "--help prints the usage on stdout and exits 0")

sys.exit(1 if failures else 0)
