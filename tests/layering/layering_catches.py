#!/usr/bin/env python3
"""The layering check fails where it should: on a copy of the tree, each wrong include below is
added alone, and the check must exit 1 naming that file and line (and pass again once the copy is
restored). Without this, a check that accepted everything would pass as well.

Usage: layering_catches.py CHECK_SCRIPT SOURCE_ROOT
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

check, source = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])

# (file, the line added at its top, words the report must hold)
BREAKS = [
    ("lib/worker/task_runner.cpp", '#include "pool/dispatcher.hpp"',
     'part worker may not include "pool/dispatcher.hpp" (part pool)'),
    ("lib/base/segment_name.cpp", '#include "data/memory_room.hpp"',
     'part base may not include "data/memory_room.hpp" (part data)'),
    ("lib/cluster/mpi_link.cpp", '#include "pool/launcher.hpp"',
     'part cluster may not include "pool/launcher.hpp" (part pool)'),
    ("lib/worker/task_runner.cpp", "#include <corun/detail/map_engine.hpp>",
     "part worker may not include <corun/detail/map_engine.hpp> (part front)"),
    ("include/corun/report.hpp", "#include <corun/cpu_monitor.hpp>",
     "part data may not include <corun/cpu_monitor.hpp> (part machine)"),
    ("lib/front/orchestrator.cpp", '#include "dispatcher.hpp"',
     '"dispatcher.hpp" does not name its part'),
    ("include/corun/pool.hpp", "#include <corun/corun.hpp>", "which is for programs"),
]

failures = 0
with tempfile.TemporaryDirectory() as tmp:
    root = pathlib.Path(tmp)
    for d in ("lib", "include"):
        shutil.copytree(source / d, root / d)
    clean = subprocess.run([sys.executable, check, root], capture_output=True, text=True)
    if clean.returncode != 0:
        print("the unchanged tree fails:\n" + clean.stdout)
        failures += 1
    for path, line, expected in BREAKS:
        target = root / path
        original = target.read_text()
        target.write_text(line + "\n" + original)
        r = subprocess.run([sys.executable, check, root], capture_output=True, text=True)
        target.write_text(original)
        where = f"{path}:1: "
        if r.returncode != 1 or not any(l.startswith(where) and expected in l
                                        for l in r.stdout.splitlines()):
            print(f"FAIL: {line} in {path}: exit {r.returncode}, wanted a line starting "
                  f"'{where}' holding '{expected}'; got:\n{r.stdout}")
            failures += 1
        else:
            print(f"ok: {r.stdout.splitlines()[0]}")
    # A file that does not say which side it runs on.
    target = root / "lib/pool/dispatcher.cpp"
    original = target.read_text()
    target.write_text(original.replace("/// Side: parent.\n", ""))
    r = subprocess.run([sys.executable, check, root], capture_output=True, text=True)
    target.write_text(original)
    if r.returncode != 1 or "lib/pool/dispatcher.cpp:1: its \\file comment does not say its " \
                            "side" not in r.stdout:
        print(f"FAIL: a file without its side passed:\n{r.stdout}")
        failures += 1
    else:
        print(f"ok: {r.stdout.splitlines()[0]}")
    # A public header no part claims is an error too, naming the table to add it to.
    (root / "include/corun/orphan.hpp").write_text("#pragma once\n/// \\file\n/// An orphan.\n/// Side: both.\n")
    r = subprocess.run([sys.executable, check, root], capture_output=True, text=True)
    if r.returncode != 1 or "include/corun/orphan.hpp:1: public header corun/orphan.hpp has no " \
                            "part" not in r.stdout:
        print(f"FAIL: an unassigned public header passed:\n{r.stdout}")
        failures += 1
    else:
        print(f"ok: {r.stdout.splitlines()[0]}")
sys.exit(1 if failures else 0)
