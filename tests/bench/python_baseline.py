#!/usr/bin/python3
"""The workloads of corun_bench, written the way an mpaio user would write them.

asyncio drives a concurrent.futures.ProcessPoolExecutor (2 workers) through
loop.run_in_executor; the data lives once in multiprocessing.shared_memory and each task
receives only its metadata (segment name, shape, dtype, slice), attaches the segment once per
worker process and sees its slice as a numpy view. Results come back to the event loop.

Run it with Debian's /usr/bin/python3 (python3-numpy):

    /usr/bin/python3 tests/bench/python_baseline.py [--quick] [--json]

Prints a table; with --json the last line is one flat JSON object of numbers whose keys match
corun_bench's where the measurement applies.
"""

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import statistics
import sys
import time
from multiprocessing import shared_memory

try:
    import numpy as np
except ImportError as exc:
    print(f"skipping: {sys.executable} cannot import numpy ({exc}); apt-get install python3-numpy "
          "and run this with /usr/bin/python3")
    sys.exit(77)

WORKERS = 2
PARTITIONS = 8

# ---------------------------------------------------------------------------------------------
# What runs in the worker processes.

_segments = {}  # name -> SharedMemory, attached once per worker process


def _view(name, shape, dtype):
    shm = _segments.get(name)
    if shm is None:
        # Pool workers share the parent's resource tracker, which already knows the segment;
        # the parent's unlink() unregisters it.
        shm = shared_memory.SharedMemory(name=name)
        _segments[name] = shm
    return np.ndarray(shape, dtype=dtype, buffer=shm.buf)


def empty_task(name, shape, dtype, start, end):
    _view(name, shape, dtype)[start:end]


def sum_task(name, shape, dtype, start, end):
    return int(_view(name, shape, dtype)[start:end].sum())


def compute_kernel(x):
    """20 transcendental operations per element: 4 rounds of sin, cos, exp, log, sqrt."""
    y = x
    for _ in range(4):
        s = np.sin(y)
        c = np.cos(y)
        e = np.exp(s - c)
        y = np.sqrt(np.log(1.0 + e))
    return float(y.sum())


def compute_task(name, shape, dtype, start, end):
    return compute_kernel(_view(name, shape, dtype)[start:end])


def _wait_for_all(barrier):
    barrier.wait()


def _noop():
    return None


# ---------------------------------------------------------------------------------------------
# The parent: an asyncio program.


class SharedArray:
    """A numpy array in a new shared-memory segment (the parent owns and unlinks it)."""

    def __init__(self, n, dtype):
        self.dtype = np.dtype(dtype)
        self.shape = (n,)
        self.shm = shared_memory.SharedMemory(create=True, size=max(1, n * self.dtype.itemsize))
        self.array = np.ndarray(self.shape, dtype=self.dtype, buffer=self.shm.buf)

    def meta(self):
        return self.shm.name, self.shape, self.dtype.str

    def close(self):
        del self.array
        self.shm.close()
        self.shm.unlink()


def partitions(n, parts):
    base, extra = divmod(n, parts)
    out, start = [], 0
    for i in range(parts):
        end = start + base + (1 if i < extra else 0)
        out.append((start, end))
        start = end
    return out


def median(values):
    return statistics.median(values)


def percentile(values, p):
    v = sorted(values)
    rank = max(1, min(len(v), -(-len(v) * p // 100)))
    return v[int(rank) - 1]


async def run_slices(loop, pool, fn, meta, slices, on_result=None):
    """Every slice through the pool at once (the executor queues them); results go to
    on_result on the event loop as they arrive."""

    async def one(start, end):
        value = await loop.run_in_executor(pool, fn, *meta, start, end)
        if on_result is not None:
            on_result(value)

    await asyncio.gather(*(one(s, e) for s, e in slices))


def measure_pool_start(cfg, results):
    times = {"fork": [], "spawn": []}
    for _ in range(cfg.start_reps):
        for method in ("fork", "spawn"):
            ctx = multiprocessing.get_context(method)
            barrier = ctx.Barrier(WORKERS)
            t0 = time.perf_counter()
            # Each worker runs its initializer once it has started (and, for spawn, imported this
            # module and numpy); the barrier holds the two tasks until both workers are up.
            with concurrent.futures.ProcessPoolExecutor(
                WORKERS, mp_context=ctx, initializer=_wait_for_all, initargs=(barrier,)
            ) as pool:
                futures = [pool.submit(_noop) for _ in range(WORKERS)]
                for f in futures:
                    f.result()
                times[method].append((time.perf_counter() - t0) * 1e3)
    results["pool_start_fork_ms"] = median(times["fork"])
    results["pool_start_spawn_ms"] = median(times["spawn"])


async def measure_round_trips(cfg, loop, pool, results):
    one = SharedArray(1, "<i8")
    try:
        meta = one.meta()
        warmup = max(100, cfg.rtt_iters // 10)
        us = []
        for i in range(warmup + cfg.rtt_iters):
            t0 = time.perf_counter()
            await loop.run_in_executor(pool, empty_task, *meta, 0, 1)
            if i >= warmup:
                us.append((time.perf_counter() - t0) * 1e6)
        results["empty_task_rtt_us_p50"] = median(us)
        results["empty_task_rtt_us_p99"] = percentile(us, 99)
    finally:
        one.close()


async def measure_many_empty(cfg, loop, pool, results):
    n = cfg.many_tasks
    ints = SharedArray(n, "<i8")
    try:
        rates = []
        for _ in range(cfg.many_reps):
            done = [0]

            def count(_value):
                done[0] += 1

            t0 = time.perf_counter()
            slices = ((i, i + 1) for i in range(n))
            await run_slices(loop, pool, empty_task, ints.meta(), slices, count)
            rates.append(n / (time.perf_counter() - t0))
            assert done[0] == n, "many empty tasks: callbacks"
        results["empty_tasks_per_s"] = median(rates)
        results["empty_tasks_n"] = n
    finally:
        ints.close()


async def measure_sum(cfg, loop, pool, results):
    n = cfg.sum_n
    ints = SharedArray(n, "<i8")
    try:
        ints.array[:] = np.arange(1, n + 1, dtype=np.int64)
        expected = n * (n + 1) // 2
        parts = partitions(n, PARTITIONS)
        total = [0]

        def add(partial):
            total[0] += partial

        await run_slices(loop, pool, sum_task, ints.meta(), parts, add)  # warm
        assert total[0] == expected, "sum warm-up"
        pool_ms, serial_ms = [], []
        for _ in range(cfg.sum_reps):
            total[0] = 0
            t0 = time.perf_counter()
            await run_slices(loop, pool, sum_task, ints.meta(), parts, add)
            pool_ms.append((time.perf_counter() - t0) * 1e3)
            assert total[0] == expected, "sum by the pool"
            t0 = time.perf_counter()
            serial = int(ints.array.sum())
            serial_ms.append((time.perf_counter() - t0) * 1e3)
            assert serial == expected, "sum in process"
        results["sum100m_ms"] = median(pool_ms)
        results["sum100m_serial_ms"] = median(serial_ms)
        results["sum100m_ms_min"] = min(pool_ms)
        results["sum100m_serial_ms_min"] = min(serial_ms)
        results["sum_elements"] = n
    finally:
        ints.close()


async def measure_compute(cfg, loop, pool, results):
    n = cfg.compute_n
    xs = SharedArray(n, "<f8")
    try:
        xs.array[:] = (np.arange(n) % 1000) / 1000.0
        parts = partitions(n, PARTITIONS)
        total = [0.0]

        def add(partial):
            total[0] += partial

        await run_slices(loop, pool, compute_task, xs.meta(), parts, add)  # warm
        reference = total[0]
        pool_ms, serial_ms = [], []
        for _ in range(cfg.compute_reps):
            total[0] = 0.0
            t0 = time.perf_counter()
            await run_slices(loop, pool, compute_task, xs.meta(), parts, add)
            pool_ms.append((time.perf_counter() - t0) * 1e3)
            assert abs(total[0] - reference) <= 1e-9 * abs(reference), "compute by the pool"
            t0 = time.perf_counter()
            serial = compute_kernel(xs.array)
            serial_ms.append((time.perf_counter() - t0) * 1e3)
            assert abs(serial - reference) <= 1e-9 * abs(reference), "compute in process"
        results["compute_ms"] = median(pool_ms)
        results["compute_serial_ms"] = median(serial_ms)
        results["compute_ms_min"] = min(pool_ms)
        results["compute_serial_ms_min"] = min(serial_ms)
        results["compute_elements"] = n
    finally:
        xs.close()


async def run_all(cfg, results):
    loop = asyncio.get_running_loop()
    # Python's default start method on Linux (fork), as a user who does not choose gets.
    with concurrent.futures.ProcessPoolExecutor(WORKERS) as pool:
        # Start both workers before timing anything.
        await asyncio.gather(*(loop.run_in_executor(pool, _noop) for _ in range(WORKERS)))
        progress("round trips (one empty task)")
        await measure_round_trips(cfg, loop, pool, results)
        progress(f"{cfg.many_tasks} empty tasks")
        await measure_many_empty(cfg, loop, pool, results)
        progress(f"sum over {cfg.sum_n} int64")
        await measure_sum(cfg, loop, pool, results)
        progress(f"compute-bound kernel over {cfg.compute_n} float64")
        await measure_compute(cfg, loop, pool, results)


def progress(what):
    print(f"python_baseline: {what}", file=sys.stderr, flush=True)


def config(quick):
    cfg = argparse.Namespace(
        quick=quick,
        rtt_iters=5_000,
        many_tasks=20_000,
        many_reps=3,
        sum_n=100_000_000,
        sum_reps=5,
        compute_n=20_000_000,
        compute_reps=3,
        start_reps=5,
    )
    if quick:
        cfg.rtt_iters, cfg.many_tasks, cfg.many_reps = 500, 2_000, 1
        cfg.sum_n, cfg.sum_reps = 10_000_000, 2
        cfg.compute_n, cfg.compute_reps = 1_000_000, 1
        cfg.start_reps = 2
    return cfg


def print_table(cfg, r):
    print(
        f"python_baseline{' --quick' if cfg.quick else ''}: ProcessPoolExecutor({WORKERS}) + "
        f"shared_memory + numpy {np.__version__}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs"
    )
    print(f"load average (1 min): {r['loadavg_1m_start']:.2f} at the start, "
          f"{r['loadavg_1m_end']:.2f} at the end")
    rows = [
        ("one empty task, p50", "empty_task_rtt_us_p50", "us"),
        ("one empty task, p99", "empty_task_rtt_us_p99", "us"),
        (f"empty tasks ({r.get('empty_tasks_n', 0):.0f})", "empty_tasks_per_s", "/s"),
        (f"sum int64 ({r.get('sum_elements', 0):.0f}), 8 parts", "sum100m_ms", "ms"),
        ("sum int64, numpy in process", "sum100m_serial_ms", "ms"),
        (f"compute ({r.get('compute_elements', 0):.0f}), 8 parts", "compute_ms", "ms"),
        ("compute, numpy in process", "compute_serial_ms", "ms"),
        ("pool start, fork", "pool_start_fork_ms", "ms"),
        ("pool start, spawn", "pool_start_spawn_ms", "ms"),
    ]
    for what, key, unit in rows:
        print(f"{what:36} {r[key]:12.2f} {unit}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--json", action="store_true", help="a JSON object on the last line")
    args = parser.parse_args()
    cfg = config(args.quick)
    results = {"quick": 1 if cfg.quick else 0, "workers": WORKERS,
               "loadavg_1m_start": os.getloadavg()[0]}
    progress("pool start (fork, spawn)")
    measure_pool_start(cfg, results)
    asyncio.run(run_all(cfg, results))
    results["loadavg_1m_end"] = os.getloadavg()[0]
    print_table(cfg, results)
    if args.json:
        sys.stdout.flush()
        rounded = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in results.items()}
        print(json.dumps(rounded))


if __name__ == "__main__":
    main()
