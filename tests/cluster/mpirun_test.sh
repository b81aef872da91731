#!/usr/bin/env bash
# Runs PROGRAM under a real mpirun on this machine with RANKS ranks talking over loopback TCP (as
# nodes would over a network), then checks that nothing is left behind: no process running
# PROGRAM (ranks or their workers) and no /dev/shm segment of any rank. Every rank must exit 0;
# with --lost R, rank R may end by a signal (the test kills it). With --expect TEXT, stdout must
# be exactly TEXT (only rank 0 prints); with --fails, some rank must fail (the job was aborted).
# Exits 77 (skip) when mpirun is missing.
# usage: mpirun_test.sh RANKS PROGRAM [--lost R] [--expect TEXT | --fails] [ARGS...]
set -uo pipefail
ranks=$1 program=$(realpath "$2")
shift 2
expect= fails=0 lost=
if [ "${1:-}" = --lost ]; then
  lost=$2
  shift 2
fi
if [ "${1:-}" = --expect ]; then
  expect=$2
  shift 2
elif [ "${1:-}" = --fails ]; then
  fails=1
  shift
fi
if ! command -v mpirun >/dev/null; then
  echo "skipping: mpirun not found (apt-get install openmpi-bin)"
  exit 77
fi
# Open MPI refuses root unless told twice; the tests run as root in CI containers.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Open MPI itself leaks at exit; LeakSanitizer would fail every run of a sanitized build.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
pid_dir=$(mktemp -d)
trap 'rm -rf "$pid_dir"' EXIT

# --enable-recovery, as the README says to launch: the job outlives a lost rank. Under it Open
# MPI 4.1's mpirun exits 0 whatever its ranks return (a rank returning 3, MPI_Abort: both 0), so
# each rank's wrapper records the pid and the exit status of PROGRAM, and those are checked.
out=$(mpirun -np "$ranks" --enable-recovery --oversubscribe --bind-to none --mca btl tcp,self \
  sh -c '"$@" & child=$!
    echo $child > "$0/rank$OMPI_COMM_WORLD_RANK"
    wait $child
    code=$?
    echo $code > "$0/status$OMPI_COMM_WORLD_RANK"
    exit $code' "$pid_dir" "$program" "$@" </dev/null)
status=$?
printf '%s\n' "$out"
failed_ranks=
for f in "$pid_dir"/status*; do
  [ -e "$f" ] || continue
  code=$(cat "$f")
  r=${f##*/status}
  [ "$code" -eq 0 ] && continue
  if [ "$r" = "$lost" ] && [ "$code" -gt 128 ]; then
    echo "note: rank $r, the one to lose, ended by signal $((code - 128))"
    continue
  fi
  failed_ranks="$failed_ranks $r:$code"
done
if [ $fails -eq 1 ]; then
  if [ -z "$failed_ranks" ]; then
    echo "FAIL: every rank exited 0; the job should have been aborted"
    exit 1
  fi
  echo "ok: ranks (rank:status)$failed_ranks failed, as they should"
elif [ $status -ne 0 ] || [ -n "$failed_ranks" ]; then
  echo "FAIL: mpirun exited with $status; ranks (rank:status)$failed_ranks"
  exit 1
fi
if [ -n "$expect" ] && [ "$out" != "$(printf '%b' "$expect")" ]; then
  echo "FAIL: expected output:"
  printf '%b\n' "$expect"
  exit 1
fi

fail=0
n=$(ls "$pid_dir" | grep -c "^rank")
if [ "$n" -ne "$ranks" ]; then
  echo "FAIL: $n of $ranks ranks started"
  fail=1
fi
for f in "$pid_dir"/rank*; do
  pid=$(cat "$f")
  for seg in /dev/shm/corun_"$pid"_*; do
    [ -e "$seg" ] || continue
    if [ $fails -eq 1 ]; then
      # mpirun killed the ranks of the aborted job; the next Cluster on this node would sweep this.
      echo "note: aborted $(basename "$f") (pid $pid) left $seg; removed"
      rm -f "$seg"
      continue
    fi
    echo "FAIL: $(basename "$f") (pid $pid) left segment $seg"
    fail=1
  done
done
for exe in /proc/[0-9]*/exe; do
  target=$(readlink "$exe" 2>/dev/null) || continue
  if [ "$target" = "$program" ]; then
    p=${exe#/proc/}
    echo "FAIL: process ${p%/exe} still runs $program"
    fail=1
  fi
done
[ $fail -eq 0 ] && echo "ok: $ranks ranks, nothing left behind"
exit $fail
