#!/usr/bin/env bash
# A development call for bench/diag scripts: build, seed the kernel archive
# from .archive.tgz when carried (bench/prebuild_archive.sh, or a diag's
# --prebuild packed the same way), then run each script given, in order, each
# alone on the card, with its log under $OUT.
#   ATTENTION_PROTO_GIT_REVISION=<rev> bash bench/diag/diag_run.sh "key_order_grid.py --rounds 8" "alibi_public_gap.py"
# The revision is required: the tree travels without .git, and git on the
# device answered with an older commit in session 21.
set -uo pipefail
: "${ATTENTION_PROTO_GIT_REVISION:?pass the commit: the tree travels without .git}"
export ATTENTION_PROTO_GIT_REVISION
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(pwd)/out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 CUDA_CACHE_DISABLE=1
export ATTENTION_PROTO_ARCHIVE_DIR="$OUT/archive"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$OUT/env.log"
python3 -m pip install --no-build-isolation --no-deps -v . >"$OUT/build.log" 2>&1 ||
  { tail -30 "$OUT/build.log"; exit 1; }
if [ -f .archive.tgz ]; then
  tar xzf .archive.tgz -C "$OUT" && mv "$OUT/.archive" "$ATTENTION_PROTO_ARCHIVE_DIR"
fi
for job in "$@"; do
  name=${job%%.py*}
  t0=$SECONDS
  # shellcheck disable=SC2086  # the job's arguments split on purpose
  timeout "${JOB_LIMIT:-300}" python3 bench/diag/$job 2>&1 | tee "$OUT/$name.log"
  echo "[$name] rc=${PIPESTATUS[0]} $((SECONDS - t0))s"
done
