"""Throughput of mpi4py.futures' MPIPoolExecutor (Debian's python3-mpi4py), the baseline of
tests/bench/mpi_bench.py: one task per item, and map() over ITEMS items in chunks (its best case:
chunksize = ITEMS / (4 x workers)). Run as:
mpirun -np R /usr/bin/python3 -m mpi4py.futures THIS TASKS ITEMS
(rank 0 runs this file, the other R - 1 ranks are the executor's workers). Prints one JSON line."""
import json
import sys
import time

from mpi4py import MPI
from mpi4py.futures import MPIPoolExecutor


def tiny(x):
    return x


def main():
    tasks, items = int(sys.argv[1]), int(sys.argv[2])
    with MPIPoolExecutor() as pool:
        list(pool.map(tiny, range(200)))  # workers started and warm
        start = time.perf_counter()
        total = sum(pool.map(tiny, range(1, tasks + 1)))
        seconds = time.perf_counter() - start
        assert total == tasks * (tasks + 1) // 2
        workers = max(1, MPI.COMM_WORLD.Get_size() - 1)  # rank 0 runs this file
        start = time.perf_counter()
        out = list(pool.map(tiny, range(items), chunksize=max(1, items // (4 * workers))))
        map_seconds = time.perf_counter() - start
        assert out[-1] == items - 1
    print(json.dumps({"mpi4py_tasks": tasks, "mpi4py_seconds": seconds,
                      "mpi4py_tasks_per_s": tasks / seconds,
                      "mpi4py_map_items_per_s": items / map_seconds}))


if __name__ == "__main__":
    main()
