#!/usr/bin/env bash
# Run one test command over N shards of the GPU test files at once (see
# bench/shard_tests.py for why), each shard's output in <prefix>-<i>.log; the
# last lines of each printed here; the exit status is the first failing one's.
#   bash bench/pytest_shards.sh N PREFIX "FILES" command...   (files appended)
set -uo pipefail
n=$1 prefix=$2 files=$3
shift 3
pids=()
i=0
while read -r group; do
  # shellcheck disable=SC2086  # a group is a space-separated file list
  "$@" $group >"$prefix-$i.log" 2>&1 &
  pids+=($!)
  echo "shard $i: $group"
  i=$((i + 1))
done < <(python3 bench/shard_tests.py "$n" $files)
rc=0
for pid in "${pids[@]}"; do
  wait "$pid"
  status=$?
  [ "$rc" -eq 0 ] && rc=$status
done
for ((j = 0; j < i; j++)); do
  echo "== shard $j"
  grep -E "ERROR SUMMARY|RACECHECK SUMMARY|passed|failed|error" "$prefix-$j.log" | tail -3
done
exit "$rc"
