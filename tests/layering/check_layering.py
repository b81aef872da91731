#!/usr/bin/env python3
"""Checks that every #include under lib/ and include/corun/ runs in an allowed direction.

corun's library is built from parts, one folder each under lib/, and every public header belongs
to one of them too. A file may include headers of its own part and of the parts its part is
allowed to reach (ALLOWED below, the table lib/meson.build and DESIGN.md draw); nothing else. A
private header is included by its part's path ("pool/dispatcher.hpp"), so the include itself
says which part it reaches into. Prints every bad include as file:line with the fix and exits 1.

Usage: check_layering.py [SOURCE_ROOT]   (default: the repository this script is in)
"""

import pathlib
import re
import sys

# Each part may include itself and these (directly; a part's allowed parts are not inherited).
ALLOWED = {
    "base": set(),
    "data": {"base"},
    "machine": {"data", "base"},
    "protocol": {"data", "base"},
    "seam": {"data", "base"},
    "worker": {"protocol", "seam", "data", "base"},
    "pool": {"worker", "protocol", "machine", "seam", "data", "base"},
    "front": {"seam", "machine", "data", "base"},
    "cluster": {"seam", "data", "base"},
    # The headers a program includes that tie both sides together: the program is both sides
    # (the same binary runs as the worker), so they may include any part's public headers.
    "api": {"front", "pool", "worker", "protocol", "machine", "seam", "data", "base", "cluster"},
}
# Public headers one part may include although their part is not allowed: the pool's public
# API, on which the orchestrator, the maps and the cluster are built (never its private headers).
ALLOWED_PUBLIC = {
    "front": {"pool.hpp"},
    "cluster": {"pool.hpp"},
}
LIB_PARTS = [p for p in ALLOWED if p != "api"]

# The part of each public header under include/corun/ (paths relative to it).
PUBLIC = {
    "detail/config.hpp": "base",
    "detail/export.hpp": "base",
    "version.hpp": "base",
    "diagnostics.hpp": "base",  # written from version.hpp.in into the build directory
    "codec.hpp": "data",
    "cereal.hpp": "data",
    "params.hpp": "data",
    "dtype.hpp": "data",
    "error.hpp": "data",
    "retry.hpp": "data",
    "wait_mode.hpp": "data",
    "slice.hpp": "data",
    "data_iterator.hpp": "data",
    "slice_view.hpp": "data",
    "shared_array.hpp": "data",
    "report.hpp": "data",
    "cpu_series.hpp": "data",
    "detail/block_map.hpp": "data",
    "cancellation.hpp": "seam",
    "worker_info.hpp": "seam",
    "task_context.hpp": "seam",
    "worker.hpp": "seam",
    "detail/process_traits.hpp": "seam",
    "detail/task_service.hpp": "seam",
    "detail/completion.hpp": "seam",
    "cpu_topology.hpp": "machine",
    "cpu_monitor.hpp": "machine",
    "detail/chunk_reply.hpp": "seam",
    "detail/map_registry.hpp": "worker",
    "detail/map_function.hpp": "worker",
    "detail/map_state.hpp": "worker",
    "map_with_state.hpp": "worker",
    "pool.hpp": "pool",
    "worker_output.hpp": "pool",
    "error_policy.hpp": "front",
    "progress.hpp": "front",
    "orchestrator.hpp": "front",
    "graceful_stop.hpp": "front",
    "detail/map_engine.hpp": "front",
    "detail/run_completion.hpp": "front",
    "detail/worker_ref.hpp": "front",
    "cluster.hpp": "cluster",
    "cluster_options.hpp": "cluster",
    "cluster_pool.hpp": "cluster",
    "distributed_array.hpp": "cluster",
    "detail/map_io.hpp": "api",
    "map.hpp": "api",
    "reduce.hpp": "api",
    "reduce_moments.hpp": "api",
    "reduce_all_of.hpp": "api",
    "corun.hpp": "api",
}
# Every file opens with a `\file` comment whose first paragraph ends "Side: <one of these>.":
# which side of the process (or rank) boundary its code runs on.
SIDES = {"parent", "worker", "both", "every rank", "rank 0", "other ranks"}
SIDE = re.compile(r"^/// Side: (.+)\.$")

# Includes nothing else may make: the umbrella is for programs only.
UMBRELLA = "corun.hpp"

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')
# A source named in a comment or in the docs ("lib/pool/pool_core.cpp"): it must exist, so that
# a file moved or renamed takes the sentences that point at it along.
NAMED_SOURCE = re.compile(r"\blib/[A-Za-z0-9_/]+\.[ch]pp\b")


def check(root: pathlib.Path) -> list[str]:
    errors = []
    include_root = root / "include" / "corun"
    files = []
    for part in LIB_PARTS:
        files += [(f, part) for f in sorted((root / "lib" / part).glob("*.[ch]pp"))]
    for f in sorted((root / "lib").glob("*.[ch]pp")):
        errors.append(f"{f.relative_to(root)}:1: a source outside a part's folder: move it into "
                      f"one of lib/{{{','.join(LIB_PARTS)}}}/")
    for f in sorted(include_root.rglob("*.hpp")):
        name = f.relative_to(include_root).as_posix()
        if name not in PUBLIC:
            errors.append(f"{f.relative_to(root)}:1: public header corun/{name} has no part: "
                          f"add it to PUBLIC in tests/layering/check_layering.py")
            continue
        files.append((f, PUBLIC[name]))
    for path, part in files:
        errors += check_side(root, path)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            where = f"{path.relative_to(root)}:{number}"
            kind, target = m.groups()
            if kind == "<":
                if not target.startswith("corun/"):
                    continue  # the standard library and the dependencies
                name = target[len("corun/"):]
                if name == UMBRELLA:
                    errors.append(f"{where}: includes <corun/corun.hpp>, which is for programs: "
                                  f"include the headers it needs")
                    continue
                if name not in PUBLIC:
                    errors.append(f"{where}: <{target}> is not a public header")
                    continue
                to = PUBLIC[name]
                if to == part or to in ALLOWED[part] or name in ALLOWED_PUBLIC.get(part, ()):
                    continue
                errors.append(f"{where}: part {part} may not include <{target}> (part {to}); "
                              f"{part} may reach {reach(part)}")
            else:
                if path.is_relative_to(include_root):
                    errors.append(f'{where}: a public header includes "{target}": public headers '
                                  f"include only <corun/...> and their dependencies")
                    continue
                to = target.split("/", 1)[0] if "/" in target else None
                if to not in LIB_PARTS:
                    errors.append(f'{where}: "{target}" does not name its part: write '
                                  f'"<part>/{target}", one of {", ".join(LIB_PARTS)}')
                    continue
                if not (root / "lib" / target).is_file():
                    errors.append(f'{where}: "{target}" is not a file under lib/')
                    continue
                if to == part or to in ALLOWED[part]:
                    continue
                errors.append(f'{where}: part {part} may not include "{target}" (part {to}); '
                              f"{part} may reach {reach(part)}")
    named_in = [f for f, _ in files] + [root / "README.md", root / "DESIGN.md"]
    named_in += sorted((root / "tests").rglob("*.[ch]pp")) if (root / "tests").is_dir() else []
    for path in named_in:
        if not path.is_file():
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for named in NAMED_SOURCE.findall(line):
                if not (root / named).is_file():
                    errors.append(f"{path.relative_to(root)}:{number}: names {named}, which does "
                                  f"not exist: name the file where that code lives now")
    return errors


def check_side(root: pathlib.Path, path: pathlib.Path) -> list[str]:
    lines = path.read_text().splitlines()
    where = f"{path.relative_to(root)}:1"
    opening = next((i for i, l in enumerate(lines[:3]) if l.startswith("/// \\file")), None)
    if opening is None:
        return [f"{where}: no /// \\file comment in its first lines: say what the file holds, "
                f"and end that paragraph with '/// Side: <{'|'.join(sorted(SIDES))}>.'"]
    for number in range(opening + 1, len(lines)):
        line = lines[number]
        if not line.startswith("///") or line.strip() == "///":
            break
        m = SIDE.match(line)
        if m:
            if m.group(1) in SIDES:
                return []
            return [f"{path.relative_to(root)}:{number + 1}: side '{m.group(1)}' is not one of "
                    f"{', '.join(sorted(SIDES))}"]
    return [f"{where}: its \\file comment does not say its side: end its first paragraph with "
            f"'/// Side: <{'|'.join(sorted(SIDES))}>.'"]


def reach(part: str) -> str:
    allowed = sorted(ALLOWED[part]) + sorted(f"<corun/{h}>" for h in ALLOWED_PUBLIC.get(part, ()))
    return ", ".join(allowed) if allowed else "no other part"


def main() -> int:
    root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).parents[2])
    errors = check(root.resolve())
    for e in errors:
        print(e)
    checked = sum(1 for _ in (root / "lib").rglob("*.[ch]pp")) + sum(
        1 for _ in (root / "include" / "corun").rglob("*.hpp"))
    print(f"layering: {checked} files, {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
