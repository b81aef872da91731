"""Runs examples/progress_bar in a real pseudo-terminal (util-linux `script`) and in pipes, and
checks the bar: drawn on a terminal only, unless CORUN_PROGRESS_BAR forces or hides it; its last
state stays on screen, exactly as expected except the measured rate and elapsed time; redrawn
at most 10 times a second.

Usage: progress_bar_pty.py PROGRESS_BAR_EXAMPLE
Exit status 77 (meson's skip) when `script` is not installed.
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import time

example = sys.argv[1]
n = 400_000
primes_line = "primes below 400000: 33860"
final_bar = ("200/200 [##############################] 100% | R slices/s | T elapsed | "
             "ETA 00:00")
failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def bar_states(text):
    """Every state the bar drew, in order: the pieces between carriage returns that hold one."""
    pieces = re.split(r"[\r\n]", text.replace("\x1b[K", ""))
    return [p for p in pieces if "slices/s" in p]


def masked(state):
    return re.sub(r"\| [0-9.]+[kM]? slices/s \| (\d+:)?\d\d:\d\d elapsed",
                  "| R slices/s | T elapsed", state)


def env_with(value):
    env = dict(os.environ)
    env.pop("CORUN_PROGRESS_BAR", None)
    if value is not None:
        env["CORUN_PROGRESS_BAR"] = value
    return env


def in_terminal(value=None):
    """Runs the example with stdout and stderr on a pseudo-terminal; returns what it showed."""
    command = f"{shlex.quote(example)} {n}"
    began = time.monotonic()
    run = subprocess.run(["script", "-qec", command, "/dev/null"], stdin=subprocess.DEVNULL,
                         capture_output=True, env=env_with(value), timeout=120)
    return run, run.stdout.decode(), time.monotonic() - began


if shutil.which("script") is None:
    print("skipping: util-linux's `script` is not installed")
    sys.exit(77)

# On a terminal: the bar, then the result on a line of its own.
run, screen, seconds = in_terminal()
check(run.returncode == 0, f"on a terminal: exit 0 (got {run.returncode}, {screen!r})")
states = bar_states(screen)
check(len(states) >= 2, f"on a terminal: the bar was drawn ({len(states)} states)")
if states:
    check(masked(states[0]).startswith("  0/200 [..............................]   0% | "),
          f"the first state is the empty bar: {states[0]!r}")
    check(masked(states[-1]) == final_bar, f"the last state is exactly the full bar: {states[-1]!r}")
# The last state stays: its line ends with a newline, and the result comes after it.
lines = screen.replace("\x1b[K", "").split("\r\n")
check(len(lines) >= 2 and masked(lines[-3].split("\r")[-1]) == final_bar
      and lines[-2] == primes_line and lines[-1] == "",
      f"the screen ends with the full bar's line, then the result: {lines[-3:]!r}")
check(len(states) <= 10 * seconds + 3,
      f"at most 10 redraws a second: {len(states)} in {seconds:.2f} s")

# Not a terminal: no bar, unless forced.
piped = subprocess.run([example, str(n)], capture_output=True, env=env_with(None), timeout=120)
check(piped.returncode == 0 and piped.stdout.decode() == primes_line + "\n",
      f"in a pipe: exit 0 and only the result on stdout ({piped.stdout!r})")
check(piped.stderr == b"", f"in a pipe: no bar on stderr ({piped.stderr[:80]!r})")

forced = subprocess.run([example, str(n)], capture_output=True, env=env_with("always"),
                        timeout=120)
forced_states = bar_states(forced.stderr.decode())
check(forced.returncode == 0 and forced_states and masked(forced_states[-1]) == final_bar
      and forced.stderr.decode().endswith("ETA 00:00\x1b[K\n"),
      f"CORUN_PROGRESS_BAR=always: the bar in a pipe, ending in a newline ({forced.stderr[-90:]!r})")

run, screen, _ = in_terminal("never")
check(run.returncode == 0 and bar_states(screen) == [] and screen == primes_line + "\r\n",
      f"CORUN_PROGRESS_BAR=never: no bar on a terminal ({screen!r})")

sys.exit(1 if failures else 0)
