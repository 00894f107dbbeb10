#!/usr/bin/env bash
# Development call for ALIBI=3 (alibi_start, session 19): the grid's kernels
# compiled in parallel, bench/diag/alibi_start_grid.py (kernel only, in turn),
# both by diag_run.sh, then the wgmma kernel's ALiBi GPU tests in 8 shards.
# Logs under $OUT.
#   ATTENTION_PROTO_GIT_REVISION=<rev> bash bench/diag/alibi_start_run.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(pwd)/out}
export OUT
bash bench/diag/diag_run.sh "alibi_start_grid.py --prebuild" \
  "alibi_start_grid.py --rounds ${ROUNDS:-6} ${GRID_ARGS:-}"
[ -n "${SKIP_TESTS:-}" ] && exit 0
export CUDA_CACHE_DISABLE=1 ATTENTION_PROTO_ARCHIVE_DIR="$OUT/archive"
export ATTENTION_PROTO_TEST_ARCHIVE_SEED="$ATTENTION_PROTO_ARCHIVE_DIR"
t0=$SECONDS
timeout "${TEST_LIMIT:-330}" bash bench/pytest_shards.sh 8 "$OUT/tests" \
  "${TEST_FILES:-tests/test_gpu_flash_hopper.py}" \
  python3 -m pytest -m "gpu and not exclusive_gpu" -q -p no:cacheprovider \
  -k "${TESTS_K:-alibi_start or as_the_scores_start or per_score_bias or small_case}"
echo "[tests] rc=$? $((SECONDS - t0))s"
