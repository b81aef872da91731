#!/usr/bin/env python3
"""The cluster benchmark: mpi_bench (corun) and mpi4py.futures' MPIPoolExecutor, each under a real
mpirun with the same ranks on this machine (loopback TCP), in one run. Prints one JSON line with
cluster_compute_efficiency, cluster_tasks_per_s, mpi4py_tasks_per_s and their ratio, and
cluster_map_items_per_s (async_map) against mpi4py_map_items_per_s (MPIPoolExecutor.map), and
the lost-rank pass (mpi_bench --lose-last-rank: detection time, items/s before and after).
Exits 77 (skip) when mpirun or mpi4py is missing."""
import argparse
import json
import os
import shutil
import subprocess
import sys

PYTHON = "/usr/bin/python3"  # Debian's, with python3-mpi4py


def last_json(cmd, env):
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True).stdout
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if not lines:
        sys.exit(f"no JSON line from {' '.join(cmd)}:\n{out}")
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bench", required=True, help="the mpi_bench executable")
    ap.add_argument("--ranks", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test, not numbers")
    args = ap.parse_args()
    if shutil.which("mpirun") is None:
        print("skipping: mpirun not found (apt-get install openmpi-bin)")
        sys.exit(77)
    if subprocess.run([PYTHON, "-c", "import mpi4py.futures"], capture_output=True).returncode:
        print("skipping: mpi4py not found (apt-get install python3-mpi4py)")
        sys.exit(77)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    # Open MPI's own components leak at exit: LeakSanitizer would fail a sanitized build's run.
    env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
    mpirun = ["mpirun", "-np", str(args.ranks), "--oversubscribe", "--bind-to", "none",
              "--mca", "btl", "tcp,self"]
    tasks, items = ("500", "20000") if args.quick else ("20000", "2000000")
    sizes = (["--rows", "20000", "--repeat", "1"] if args.quick
             else ["--rows", "1000000", "--repeat", "3"]) + ["--tasks", tasks, "--items", items]
    corun = last_json(mpirun + [args.bench] + sizes, env)
    here = os.path.dirname(os.path.abspath(__file__))
    baseline = last_json(mpirun + [PYTHON, "-m", "mpi4py.futures",
                                   os.path.join(here, "mpi4py_baseline.py"), tasks, items], env)
    # A lost rank: 3 ranks under --enable-recovery, the last one SIGKILLed during a map.
    lose = last_json(mpirun[:1] + ["-np", "3", "--enable-recovery"] + mpirun[3:] +
                     [args.bench, "--lose-last-rank", "--lose-items",
                      "20000" if args.quick else "400000"], env)
    result = {**corun, **baseline, **lose,
              "cluster_vs_mpi4py": corun["cluster_tasks_per_s"] / baseline["mpi4py_tasks_per_s"],
              "cluster_map_vs_mpi4py_map":
                  corun["cluster_map_items_per_s"] / baseline["mpi4py_map_items_per_s"]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
