#!/usr/bin/env bash
# Run one test command as N pytest processes at once on the one GPU, shard i
# keeping every N-th selected test from the i-th (ATTENTION_PROTO_TEST_SHARD,
# tests/conftest.py): most of a GPU test's time is host work (FP64 references,
# sanitizer instrumentation), so the processes use the machine's cores and cut
# the wall time of a 10-minute device call. Each shard's output goes to
# <prefix>-<i>.log, its last lines printed here; the exit status is the first
# failing one's.
# SHARD_PART=k/p (default 0/1) runs part k of p: the N processes take shards
# k*N .. k*N+N-1 of N*p, so p calls (bench/final_run.sh B 1, B 2) share the tests.
#   bash bench/pytest_shards.sh N PREFIX "FILES" command...   (files appended)
set -uo pipefail
n=$1 prefix=$2 files=$3
shift 3
part=${SHARD_PART:-0/1}
k=${part%/*} p=${part#*/}
pids=()
for ((i = 0; i < n; i++)); do
  # shellcheck disable=SC2086  # FILES is a space-separated list
  ATTENTION_PROTO_TEST_SHARD="$((k * n + i))/$((n * p))" "$@" $files >"$prefix-$i.log" 2>&1 &
  pids+=($!)
done
# A shard with no test (pytest's 5: more shards than selected tests) is fine
# while another shard ran tests; all shards empty is the run's 5.
rc=0 empty=0
for pid in "${pids[@]}"; do
  wait "$pid"
  status=$?
  if [ "$status" -eq 5 ]; then
    empty=$((empty + 1))
  elif [ "$rc" -eq 0 ]; then
    rc=$status
  fi
done
[ "$empty" -eq "$n" ] && rc=5
for ((j = 0; j < n; j++)); do
  echo "== shard $j"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed|error" "$prefix-$j.log" | tail -3
done
exit "$rc"
