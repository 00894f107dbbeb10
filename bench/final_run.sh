#!/usr/bin/env bash
# The verification of one commit before issues are resolved, in three (or four) device
# calls back to back (each fits the 10-minute limit; sessions 13 and 14 ran
# them as inline commands, this script only names them):
#   A: racecheck, synccheck and initcheck on the small GPU tests
#      (bench/sanitize.sh), memcheck on the small GPU tests in 4 shards, then
#      `bench hopper` alone on the card;
#   B: every GPU test in 8 shards, the device-wide ones alone after them
#      (bench/gpu_run.sh); `B 1` and `B 2` split them over two calls;
#   C: `bench variants` and the diag scripts named after it.
# Carry the prebuilt archive (bash bench/prebuild_archive.sh; carry
# [".archive.tgz"]) and pass the commit: the tree travels without .git.
#   ATTENTION_PROTO_GIT_REVISION=<rev> bash bench/final_run.sh A|B [1|2]|C ["script.py args" ...]
# Results and logs under $OUT (at most 8 files come back: logs are archived).
set -uo pipefail
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
: "${ATTENTION_PROTO_GIT_REVISION:?pass the commit: the tree travels without .git}"
export ATTENTION_PROTO_GIT_REVISION
case "${1:-}" in
A)
  SKIP=memcheck SHARDS=4 bash bench/sanitize.sh >"$OUT/sanitize.out" 2>&1
  sanitize=$?
  tail -6 "$OUT/sanitize.out"
  # sanitize.sh built the package and unpacked the carried archive.
  export CUDA_CACHE_DISABLE=1
  [ -d .archive ] && export ATTENTION_PROTO_TEST_ARCHIVE_SEED="$PWD/.archive"
  bash bench/pytest_shards.sh 4 "$OUT/memcheck-small" tests \
    compute-sanitizer --tool memcheck --error-exitcode 9 \
    python3 -m pytest -m "gpu and small and not not_under_memcheck" -q -p no:cacheprovider
  memcheck=$?
  grep -hE "ERROR SUMMARY|passed|failed" "$OUT"/memcheck-small-*.log
  unset ATTENTION_PROTO_TEST_ARCHIVE_SEED
  # Benchmarks start cold: an archive of their own, not the carried one.
  ATTENTION_PROTO_ARCHIVE_DIR="$OUT/bench_archive" python3 -m attention_proto.bench hopper \
    --out "$OUT" --findings "$OUT/findings.jsonl" >"$OUT/bench-hopper.log" 2>&1
  bench=$?
  rm -rf "$OUT/bench_archive"
  tail -45 "$OUT/bench-hopper.log"
  (cd "$OUT" && tar czf call-a-logs.tgz ./*.log sanitize.out && rm -f ./*.log sanitize.out)
  echo "sanitizers rc=$sanitize memcheck-small rc=$memcheck bench hopper rc=$bench"
  [ "$sanitize" -eq 0 ] && [ "$memcheck" -eq 0 ] && [ "$bench" -eq 0 ]
  ;;
B)
  # `B` alone took 579 s of the 600 s limit at f7b4c79 (session 23): `B 1`
  # then `B 2` split the tests over two calls (16 shards, 8 at a time), the
  # device-wide ones in B 1.
  if [ -n "${2:-}" ]; then
    export SHARD_PART="$(($2 - 1))/2"
    [ "$2" = 2 ] && export SKIP_EXCLUSIVE=1
  fi
  SHARDS=8 SKIP_MEMCHECK=1 SKIP_BENCH=1 bash bench/gpu_run.sh
  ;;
C)
  SKIP_TESTS=1 SKIP_MEMCHECK=1 bash bench/gpu_run.sh variants
  bench=$?
  shift
  for job in "$@"; do
    # shellcheck disable=SC2086  # the job's arguments split on purpose
    # One log per job, named by its whole command line (two runs of one
    # script with other arguments kept only the last log in session 23).
    log="$OUT/$(printf '%s' "$job" | tr -c 'A-Za-z0-9_.-' '_').log"
    timeout 300 python3 bench/diag/$job >"$log" 2>&1
    echo "[$job] rc=$?"
    tail -12 "$log"
  done
  [ "$bench" -eq 0 ]
  ;;
*)
  echo "usage: ATTENTION_PROTO_GIT_REVISION=<rev> bash bench/final_run.sh A|B [1|2]|C [diag ...]" >&2
  exit 2
  ;;
esac
