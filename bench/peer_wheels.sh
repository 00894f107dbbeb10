#!/usr/bin/env bash
# Downloads the peers the GPU image lacks into .whl/ (ignored by git); pass
# carry=[".whl"] to the device tool and bench/gpu_run.sh installs them there
# (the GPU machine has no network). Versions pinned so runs compare.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .whl
python3 -m pip download --no-deps -d .whl \
  fla-core==0.6.0 flash-linear-attention==0.6.0 einops==0.8.2
