"""Test setup: a private archive per session, poisoned outputs, hypothesis
profiles, and GPU tests that skip with the reason when no device is found."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, settings

# Before the package is imported: tests never touch the user's archive.
_ARCHIVE = tempfile.mkdtemp(prefix="ap-test-archive-")
os.environ["ATTENTION_PROTO_ARCHIVE_DIR"] = _ARCHIVE
# A prebuilt archive to start from (bench/prebuild_archive.sh; gpu_run.sh names
# it), copied so the tests never write into it: loads instead of compiles.
_SEED = os.environ.get("ATTENTION_PROTO_TEST_ARCHIVE_SEED")
if _SEED and os.path.isdir(_SEED):
    shutil.copytree(_SEED, _ARCHIVE, dirs_exist_ok=True)

import attention_proto  # noqa: E402
from attention_proto import cuda, debug  # noqa: E402

debug.poison_outputs = True

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=25, deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_report_header(config):
    s = cuda.status()
    return [
        f"attention_proto {attention_proto.__version__}: device {s['device']}",
        f"nvrtc {s['nvrtc']}",
        f"archive {_ARCHIVE}",
    ]


@pytest.hookimpl(trylast=True)  # after -m has deselected
def pytest_collection_modifyitems(config, items):
    _keep_this_shard(config, items)
    reason = cuda.unavailable_reason()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"no CUDA device: {reason.splitlines()[0]}")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_runtest_setup(item):
    """exclusive_gpu tests read the whole device's state (its free memory):
    inside test shards the other shards' allocations count, so they fail
    there rather than pass or fail by chance (bench/gpu_run.sh runs them
    alone after the shards)."""
    if item.get_closest_marker("exclusive_gpu") and _test_shard()[1] != 1:
        pytest.fail(f"{item.name} reads the whole device's state: run it outside test shards")


def _test_shard() -> tuple[int, int]:
    """(i, n) from ATTENTION_PROTO_TEST_SHARD=i/n; (0, 1) when unset."""
    shard = os.environ.get("ATTENTION_PROTO_TEST_SHARD") or "0/1"
    i, n = (int(x) for x in shard.split("/"))
    if not 0 <= i < n:
        raise pytest.UsageError(f"ATTENTION_PROTO_TEST_SHARD={shard}: expected i/n with 0 <= i < n")
    return i, n


def _keep_this_shard(config, items):
    """ATTENTION_PROTO_TEST_SHARD=i/n (bench/pytest_shards.sh runs n pytest
    processes at once on the one GPU): keep every n-th selected test from the
    i-th, so each parametrized family spreads over the shards (most of a GPU
    test's time is host work: FP64 references, sanitizer instrumentation)."""
    i, n = _test_shard()
    if n == 1:
        return
    config.hook.pytest_deselected(items=[t for j, t in enumerate(items) if j % n != i])
    items[:] = [t for j, t in enumerate(items) if j % n == i]


@pytest.fixture
def hopper_only():
    """Skips a test unless the GPU is sm_90a (the wgmma kernel's target)."""
    from attention_proto.ops import flash_hopper

    arch = cuda.properties()["arch"]
    if arch != flash_hopper.ARCH:
        pytest.skip(f"the wgmma kernel needs sm_90a, this GPU is {arch}")


@pytest.fixture
def archive_dir():
    return _ARCHIVE


@pytest.fixture
def rng(request):
    # Fresh inputs per test, reproducible per test name.
    import zlib

    import numpy as np

    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))
