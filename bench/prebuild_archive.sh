#!/usr/bin/env bash
# Compiles every shipped kernel (catalog.all_specs) and every Hopper wgmma
# variant (flash_hopper.all_specs, what the GPU tests run) for sm_90a into
# .archive/ (ignored by git; ~530 cubins, ~63 MB, ~2 min on 2 cores) and packs it
# into .archive.tgz (~16 MB: cubins compress ~4x, and the device tool carries at
# most 64 MiB with the tree). Carried to the GPU machine (device tool
# carry=[".archive.tgz"]), gpu_run.sh and sanitize.sh unpack it, name it
# in ATTENTION_PROTO_TEST_ARCHIVE_SEED and tests/conftest.py copies it into the
# tests' private archive, so they load instead of compiling; benchmarks always
# start from an empty archive (cold compiles stay cold).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf .archive
ATTENTION_PROTO_ARCHIVE_DIR="$PWD/.archive" python3 -c "
import os
from attention_proto import catalog, runtime
from attention_proto.ops import flash, flash_hopper
# bench flash's tile sweep stays out: no test runs those tiles.
sweep = {s.name for s in flash.sweep_specs('bfloat16')} - {s.name for s in flash.default_specs()}
specs = [s for s in catalog.all_specs() + flash_hopper.all_specs() + flash_hopper.merge_specs() if s.name not in sweep]
print(runtime.prebuild(specs, 'sm_90a', jobs=os.cpu_count() or 1))"
tar czf .archive.tgz .archive
ls -l .archive.tgz
