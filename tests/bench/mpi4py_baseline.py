"""Task throughput of mpi4py.futures' MPIPoolExecutor (Debian's python3-mpi4py), the baseline of
tests/bench/mpi_bench.py. Run as: mpirun -np R /usr/bin/python3 -m mpi4py.futures THIS TASKS
(rank 0 runs this file, the other R - 1 ranks are the executor's workers). Prints one JSON line."""
import json
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def tiny(x):
    return x


def main():
    tasks = int(sys.argv[1])
    with MPIPoolExecutor() as pool:
        list(pool.map(tiny, range(200)))  # workers started and warm
        start = time.perf_counter()
        total = sum(pool.map(tiny, range(1, tasks + 1)))
        seconds = time.perf_counter() - start
    assert total == tasks * (tasks + 1) // 2
    print(json.dumps({"mpi4py_tasks": tasks, "mpi4py_seconds": seconds,
                      "mpi4py_tasks_per_s": tasks / seconds}))


if __name__ == "__main__":
    main()
