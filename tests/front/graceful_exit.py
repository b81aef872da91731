#!/usr/bin/env python3
"""A program using GracefulStop ends with its segment removed, however many signals arrive.

Usage: graceful_exit.py GRACEFUL_EXIT

Drives tests/front/graceful_exit.cpp with real signals: the patterns of issue 17 (SIGINT three times
2 ms apart, SIGTERM twice 1 ms apart) after its pool is ready, then more signals once the
graceful shutdown has completed, after the GracefulStop is gone and after the pool is gone.
Each run must exit 0 with its segment gone. With --cancel (handed back without a stop) a
signal takes its default action, but the segment is removed first. The gaps between signals
are the attack's pattern; each step waits for the program's own line, never for time.
"""
import os
import signal
import subprocess
import sys
import time

PROGRAM = sys.argv[1]
failures = []


def start(*args):
    p = subprocess.Popen([PROGRAM, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline().split()
    assert first[0] == "segment", first
    return p, "/dev/shm/" + first[1]


def expect(p, line):
    got = p.stdout.readline().strip()
    if got != line:
        raise AssertionError(f"expected {line!r}, got {got!r}")


def burst(p, sig, count, gap):
    for i in range(count):
        if i:
            time.sleep(gap)
        p.send_signal(sig)


def check(name, p, segment, want_rc):
    rc = p.wait(timeout=60)
    left = os.path.exists(segment)
    ok = rc == want_rc and not left
    print(f"{'ok' if ok else 'FAILED'}: {name}: exit {rc} (want {want_rc}), segment "
          f"{'left' if left else 'removed'}")
    if not ok:
        failures.append(name)
        if left:
            os.unlink(segment)


for sig, count, gap in [(signal.SIGINT, 3, 0.002), (signal.SIGTERM, 2, 0.001)]:
    for run in range(4):
        name = f"{sig.name} x{count} {gap * 1000:g} ms apart, run {run + 1}"
        p, segment = start()
        try:
            expect(p, "ready")
            burst(p, sig, count, gap)
            expect(p, "stopped")  # the graceful shutdown completed: signals must not kill now
            burst(p, sig, 2, gap)
            p.stdin.write("\n"); p.stdin.flush()
            expect(p, "gone")  # the GracefulStop is gone, the pool and the array are not
            burst(p, sig, 2, gap)
            p.stdin.write("\n"); p.stdin.flush()
            expect(p, "done")  # the pool is gone, the array is not
            burst(p, sig, 2, gap)
            p.stdin.write("\n"); p.stdin.flush()
        except (AssertionError, BrokenPipeError) as e:
            print(f"{name}: {e}")
        check(name, p, segment, 0)

for sig in (signal.SIGINT, signal.SIGTERM):
    name = f"{sig.name} after cancel()"
    p, segment = start("--cancel")
    try:
        expect(p, "cancelled")
        expect(p, "stopped")
        p.send_signal(sig)
    except AssertionError as e:
        print(f"{name}: {e}")
    check(name, p, segment, -sig)

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
