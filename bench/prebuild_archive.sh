#!/usr/bin/env bash
# Compiles every shipped kernel (catalog.all_specs) for sm_90a into .archive/
# (ignored by git; ~190 cubins, ~21 MB, ~45 s on 2 cores). Carried to the GPU
# machine (device tool carry=[".archive"]), gpu_run.sh and sanitize.sh name it
# in ATTENTION_PROTO_TEST_ARCHIVE_SEED and tests/conftest.py copies it into the
# tests' private archive, so they load instead of compiling; benchmarks always
# start from an empty archive (cold compiles stay cold).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .archive
ATTENTION_PROTO_ARCHIVE_DIR="$PWD/.archive" python3 -c "
from attention_proto import catalog, runtime
print(runtime.prebuild(catalog.all_specs(), 'sm_90a'))"
