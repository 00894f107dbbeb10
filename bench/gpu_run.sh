#!/usr/bin/env bash
# One call on the lent GPU: build, GPU tests, sanitizers on the small cases, a
# short benchmark; logs and JSON under $OUT, a short table printed last. The
# results ($OUT/<date>-<machine>-<suite>.json) can be committed to bench/results/
# as they are; `python -m attention_proto.findings derive` then derives findings.
#   bash bench/gpu_run.sh [bench suites...]     (default suites: foundation)
# Env: ATTENTION_PROTO_GIT_REVISION (the tree travels without .git), TESTS,
# RACECHECK_TESTS, BENCH_ARGS, SKIP_TESTS=1, SKIP_BENCH=1, SKIP_MEMCHECK=1, SHARDS=N,
# SHARD_PART=k/p (bench/pytest_shards.sh), SKIP_EXCLUSIVE=1.
set -uo pipefail
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CI=1
export ATTENTION_PROTO_ARCHIVE_DIR="$OUT/archive_unused"
# With a driver present NVRTC caches its output in the driver's compute cache
# (seen in 2026-11 runs: a repeat compile in a new process took 17 ms instead
# of 200-400 ms); disable it so "cold compile" means cold. We load cubins, so
# no driver JIT is affected.
export CUDA_CACHE_DISABLE=1
rm -rf "$ATTENTION_PROTO_ARCHIVE_DIR"
SUITES=("${@:-foundation}")
: "${ATTENTION_PROTO_GIT_REVISION:=unknown}"  # pass it in the command: the tree travels without .git
declare -A STATUS

step() { # name, command...
  local name=$1; shift
  local t0=$SECONDS
  "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  STATUS[$name]="rc=$rc $((SECONDS - t0))s"
  echo "[$name] rc=$rc in $((SECONDS - t0))s"
  return $rc
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv
  python3 --version; python3 -c "import torch; print('torch', torch.__version__)"; } \
  >"$OUT/env.log" 2>&1
head -3 "$OUT/env.log"

step build python3 -m pip install --no-build-isolation --no-deps -v . || { tail -40 "$OUT/build.log"; exit 1; }
# Peers the image lacks (flash-linear-attention and einops), as wheels that
# bench/peer_wheels.sh downloads into .whl/; the device tool carries them.
if compgen -G ".whl/*.whl" >/dev/null; then
  step peers python3 -m pip install --no-deps --no-index .whl/*.whl
fi
if [ -z "${SKIP_TESTS:-}" ]; then
# A carried prebuilt archive (bench/prebuild_archive.sh) spares the tests the
# compiles: tests/conftest.py copies it into the tests' private archive. The
# benchmarks below never see it.
# The carried archive travels packed (bench/prebuild_archive.sh).
[ -f .archive.tgz ] && { rm -rf .archive; tar xzf .archive.tgz; }
if [ -d .archive ]; then
  export ATTENTION_PROTO_TEST_ARCHIVE_SEED="$PWD/.archive"
  echo "tests start from the carried archive: $(find .archive -name '*.bin' | wc -l) kernels"
fi
# SHARDS=N: N pytest processes at once, each every N-th test (bench/pytest_shards.sh).
if [ "${SHARDS:-1}" -gt 1 ]; then
  step tests bash bench/pytest_shards.sh "$SHARDS" "$OUT/tests" "${TESTS:-tests}" \
    python3 -m pytest -m "gpu and not exclusive_gpu" -q --maxfail=15 --durations=15 -p no:cacheprovider
  # Tests that read the whole device's state run after the shards, alone
  # (pytest's 5, none selected in TESTS, is said, not hidden).
  # SKIP_EXCLUSIVE=1: another call of the same split runs them (final_run.sh B 2).
  if [ -z "${SKIP_EXCLUSIVE:-}" ]; then
    step tests_exclusive python3 -m pytest ${TESTS:-tests} -m "gpu and exclusive_gpu" -q -p no:cacheprovider
    tail -3 "$OUT/tests_exclusive.log"
    if [ "${STATUS[tests_exclusive]%% *}" = "rc=5" ]; then
      echo "[tests_exclusive] none selected in ${TESTS:-tests}"
      STATUS[tests_exclusive]="rc=0 (none selected) ${STATUS[tests_exclusive]#* }"
    fi
  fi
else
  step tests python3 -m pytest ${TESTS:-tests} -m gpu -q --maxfail=15 --durations=15 -p no:cacheprovider
fi
tail -8 "$OUT/tests.log"
# Every shard's count on stdout too, not only in the logs archive.
compgen -G "$OUT/tests-*.log" >/dev/null && grep -hE "passed|failed" "$OUT"/tests-*.log
# SKIP_MEMCHECK=1 when bench/sanitize.sh's full memcheck (a superset) runs at this commit.
if [ -z "${SKIP_MEMCHECK:-}" ]; then
step memcheck compute-sanitizer --tool memcheck --error-exitcode 9 \
  python3 -m pytest ${TESTS:-tests} -m "gpu and small" -q -x -p no:cacheprovider
grep -E "ERROR SUMMARY|passed|failed" "$OUT/memcheck.log" | tail -3
fi
if [ -n "${RACECHECK_TESTS:-}" ]; then
  step racecheck compute-sanitizer --tool racecheck --error-exitcode 9 \
    python3 -m pytest $RACECHECK_TESTS -q -x -p no:cacheprovider
  grep -E "RACECHECK SUMMARY|ERROR SUMMARY|passed|failed" "$OUT/racecheck.log" | tail -3
fi
fi
rm -rf "$ATTENTION_PROTO_ARCHIVE_DIR"  # benchmarks start cold
rm -f "$OUT/findings.jsonl"
[ -z "${SKIP_BENCH:-}" ] && step bench python3 -m attention_proto.bench "${SUITES[@]}" ${BENCH_ARGS:-} --out "$OUT" --findings "$OUT/findings.jsonl"
rm -rf "$ATTENTION_PROTO_ARCHIVE_DIR"

echo
echo "== summary ($(head -2 "$OUT/env.log" | tail -1))"
for k in build peers tests tests_exclusive memcheck racecheck bench; do
  [ -n "${STATUS[$k]:-}" ] && printf '%-10s %s\n' "$k" "${STATUS[$k]}"
done
[ -f "$OUT/tests.log" ] && grep -E "passed|failed|error" "$OUT/tests.log" | tail -2
echo
[ -f "$OUT/bench.log" ] && tail -45 "$OUT/bench.log"
# The device tool brings back at most 8 files: the logs travel as one archive
# (tar xzf logs.tgz), beside the results JSON and findings.
(cd "$OUT" && tar czf logs.tgz ./*.log && rm -f ./*.log)
# Exit status: failed if any step failed (the device tool reports it as rc).
for k in "${!STATUS[@]}"; do [[ ${STATUS[$k]} == rc=0* ]] || exit 1; done
exit 0
