#!/usr/bin/env python3
"""Runs a program and checks that its stdout is exactly the given lines and its status 0.

Usage: exact_output.py PROGRAM LINE...

Prints both outputs and exits 1 on a difference (or a non-zero status, or a run of over 100 s).
"""
import subprocess
import sys

program, expected = sys.argv[1], sys.argv[2:]
run = subprocess.run([program], capture_output=True, encoding="utf-8", timeout=100)
got = run.stdout.splitlines()
if run.returncode != 0 or got != expected:
    print(f"FAIL {program} exited {run.returncode}")
    print("expected:\n  " + "\n  ".join(expected))
    print("got:\n  " + "\n  ".join(got))
    print("stderr:\n" + run.stderr)
    sys.exit(1)
print("\n".join(got))
