#!/usr/bin/python3
"""Draws what a slice costs against its size, log-log: time per task and time per element.

Usage: plot_cost_per_slice.py COST_CSV OUT_PNG

COST_CSV is `corun_bench --cost-csv`'s output
(slice_size,tasks,elements,seconds,ns_per_task,ns_per_elem,threads_ns_per_elem): one row per
slice size, each a run summing int64 over 2 worker processes. Run with Debian's python3
(python3-matplotlib).
"""
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def read_rows(path):
    with open(path, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def main(cost_csv, out_png):
    rows = sorted(read_rows(cost_csv), key=lambda r: r["slice_size"])
    if not rows:
        sys.exit(f"plot_cost_per_slice: no rows in {cost_csv}")
    sizes = [r["slice_size"] for r in rows]

    fig, (per_task, per_elem) = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True)
    per_task.loglog(sizes, [r["ns_per_task"] / 1e3 for r in rows], "o-", color="tab:blue",
                    label="corun, 2 workers")
    per_task.set_ylabel("wall time / tasks (µs)")
    per_task.set_title("per task: flat while the round trip dominates")

    per_elem.loglog(sizes, [r["ns_per_elem"] for r in rows], "o-", color="tab:orange",
                    label="corun, 2 workers")
    threads = rows[0].get("threads_ns_per_elem")
    if threads:
        per_elem.axhline(threads, color="grey", linestyle="--",
                         label=f"std::thread x2, 8 parts ({threads:.2f} ns)")
    per_elem.set_ylabel("wall time / elements (ns)")
    per_elem.set_title("per element: what a chunk size costs")

    for ax in (per_task, per_elem):
        ax.set_xlabel("slice size (int64 elements, summed)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle("corun: cost of one slice against its size (tests/bench/corun_bench)")
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
