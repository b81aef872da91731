"""joblib's Parallel over tiny items, the baseline of map_bench: the same function (square an
int), the same number of worker processes, joblib's automatic batching (batch_size='auto', the
loky backend). Prints one JSON line: {"joblib_items_per_s": ..., "items": ..., "workers": ...}.
Exits 77 (skip) when joblib is missing (apt-get install python3-joblib)."""
import argparse
import json
import sys
import time

try:
    from joblib import Parallel, delayed
except ImportError:
    print("skipping: joblib is missing (apt-get install python3-joblib)", file=sys.stderr)
    sys.exit(77)


def square(x):
    return x * x


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, required=True)
    parser.add_argument("--workers", type=int, required=True)
    args = parser.parse_args()
    with Parallel(n_jobs=args.workers, batch_size="auto") as parallel:
        parallel(delayed(square)(x) for x in range(1000))  # start the workers
        start = time.perf_counter()
        out = parallel(delayed(square)(x) for x in range(args.items))
        seconds = time.perf_counter() - start
    n = args.items
    if out[-1] != (n - 1) * (n - 1) or len(out) != n:
        print("joblib returned wrong results", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({"joblib_items_per_s": n / seconds, "items": n, "workers": args.workers}))


if __name__ == "__main__":
    main()
