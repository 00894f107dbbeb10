"""Split the GPU test files into N shards of similar size, one line each.

bench/gpu_run.sh and bench/sanitize.sh run one pytest process per shard, all
at once on the one GPU: most of a GPU test's time is host work (compiles,
references in FP64, sanitizer instrumentation), so concurrent processes use the
card's host cores and cut the wall time of a 10-minute device call. Sizes are
source lines, a rough proxy for run time; the largest files go first, each to
the lightest shard so far.
  python3 bench/shard_tests.py N [files or folders...]   (default: tests)
A folder stands for its test_*.py files that mark a test gpu.
"""

import glob
import os
import sys


def shards(files, n):
    groups = [[] for _ in range(n)]
    weights = [0] * n
    sized = sorted(((sum(1 for _ in open(f)), f) for f in files), reverse=True)
    for lines, name in sized:
        i = weights.index(min(weights))
        groups[i].append(name)
        weights[i] += lines
    return [g for g in groups if g]


if __name__ == "__main__":
    n = int(sys.argv[1])
    files = []
    for arg in sys.argv[2:] or ["tests"]:
        if os.path.isdir(arg):
            found = sorted(glob.glob(os.path.join(arg, "test_*.py")))
            files += [f for f in found if "pytest.mark.gpu" in open(f).read()]
        else:
            files.append(arg)
    for group in shards(files, n):
        print(" ".join(sorted(group)))
