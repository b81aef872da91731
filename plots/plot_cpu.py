#!/usr/bin/python3
"""Draws per-PU CPU utilisation over time, with each worker process's task spans shaded.

Usage: plot_cpu.py CPU_CSV TASKS_CSV OUT_PNG

CPU_CSV is CpuSeries::write_csv's output (time_s,cpu0,...); TASKS_CSV is write_tasks_csv's
(task,worker,slice_start,slice_end,pid,pu,t_start,t_end,outcome). Run with Debian's python3
(python3-matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def main(cpu_csv, tasks_csv, out_png):
    cpu = read_rows(cpu_csv)
    tasks = read_rows(tasks_csv)
    columns = [c for c in (cpu[0].keys() if cpu else []) if c != "time_s"]
    times = [float(r["time_s"]) for r in cpu]

    pids = sorted({int(t["pid"]) for t in tasks})
    workers = sorted({t["worker"] for t in tasks})
    colours = plt.get_cmap("tab10")

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    # Each PU's line thinner than the one before, so PUs equally busy (all at 100 % while the
    # pool works) stay visible on top of one another; a dot per sample.
    for i, col in enumerate(columns):
        top.plot(times, [float(r[col]) for r in cpu], label=col, color=colours(i % 10),
                 linewidth=1.5 + 2.5 * (len(columns) - 1 - i) / max(len(columns) - 1, 1),
                 marker="o", markersize=2.5)
    top.set_ylabel("busy (%)")
    top.set_ylim(0, 105)
    top.set_title("CPU utilisation per PU, and the tasks of each worker process")
    if columns:
        top.legend(loc="lower right", ncol=min(len(columns), 8), fontsize="small")
    top.grid(alpha=0.3)

    for t in tasks:
        row = pids.index(int(t["pid"]))
        start, end = float(t["t_start"]), float(t["t_end"])
        colour = colours(workers.index(t["worker"]) % 10)
        bottom.barh(row, max(end - start, 1e-4), left=start, height=0.6, color=colour,
                    edgecolor="black", linewidth=0.4,
                    alpha=1.0 if t["outcome"] == "ok" else 0.4)
        top.axvspan(start, end, color=colour, alpha=0.04)
    bottom.set_yticks(range(len(pids)))
    bottom.set_yticklabels([f"pid {p}" for p in pids])
    bottom.set_xlabel("seconds since the run started")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours(i % 10)) for i in range(len(workers))]
    if workers:
        bottom.legend(handles, workers, loc="upper right", fontsize="small")
    bottom.grid(alpha=0.3, axis="x")

    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    print(f"wrote {out_png}", file=sys.stderr)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
