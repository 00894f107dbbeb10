#!/usr/bin/env bash
# Development call for ALIBI=3 (alibi_start): build; compile the grid's
# kernels in parallel; bench/diag/alibi_start_grid.py (kernel only, in turn);
# then the wgmma kernel's ALiBi GPU tests in 8 shards. Logs under $OUT.
#   ATTENTION_PROTO_GIT_REVISION=<rev> bash bench/diag/alibi_start_run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CUDA_CACHE_DISABLE=1
export ATTENTION_PROTO_ARCHIVE_DIR="$OUT/archive"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.log"
python3 -m pip install --no-build-isolation --no-deps -v . >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
t0=$SECONDS
python3 bench/diag/alibi_start_grid.py --prebuild 2>&1 | tail -2
echo "[prebuild] $((SECONDS - t0))s"
t0=$SECONDS
timeout 300 python3 bench/diag/alibi_start_grid.py --rounds "${ROUNDS:-6}" ${GRID_ARGS:-} 2>&1 | tee "$OUT/grid.log"
echo "[grid] rc=${PIPESTATUS[0]} $((SECONDS - t0))s"
t0=$SECONDS
export ATTENTION_PROTO_TEST_ARCHIVE_SEED="$ATTENTION_PROTO_ARCHIVE_DIR"
[ -n "${SKIP_TESTS:-}" ] && exit 0
timeout "${TEST_LIMIT:-330}" bash bench/pytest_shards.sh 8 "$OUT/tests" \
  "${TEST_FILES:-tests/test_gpu_flash_hopper.py}" \
  python3 -m pytest -m "gpu and not exclusive_gpu" -q -p no:cacheprovider \
  -k "${TESTS_K:-alibi_start or as_the_scores_start or per_score_bias or small_case}"
echo "[tests] rc=$? $((SECONDS - t0))s"
