"""An archive that cannot be written never fails a call: the kernel is returned
and kept in memory, and one ArchiveWarning names the path and the reason. Lock
files go away after use; stale temp and lock files go away when an archive
opens. CPU tests go through compile_binary (get_or_compile short of the GPU);
the GPU tests run simple_attention itself."""

from __future__ import annotations

import fcntl
import multiprocessing as mp
import os
import re
import time
import uuid
import warnings

import numpy as np
import pytest

import attention_proto as ap
from attention_proto import ArchiveWarning, _core, probes, runtime
from tolerance import assert_close_to_reference

ARCH = "sm_90a"
KINDS = ["root_under_proc", "root_is_a_file", "dir_at_entry_path", "read_only_root"]
DAY = 24 * 3600


@pytest.fixture
def restore_archive():
    before = runtime.archive_root()
    yield
    runtime.set_archive(before)


def _break(kind: str, tmp_path, key) -> tuple[str, str]:
    """An archive root broken as `kind` for `key`, and the path a warning must name."""
    if kind == "root_under_proc":
        root = f"/proc/attention-proto-{uuid.uuid4().hex}/archive"
        return root, root
    if kind == "root_is_a_file":
        root = tmp_path / "archive"
        root.write_bytes(b"not a directory")
        return str(root), str(root)
    if kind == "dir_at_entry_path":
        entry = _core.BinaryArchive(str(tmp_path)).path_for(key)
        os.makedirs(entry)
        open(os.path.join(entry, "keep"), "w").close()  # not removable as an empty dir
        return str(tmp_path), entry
    if kind == "read_only_root":
        if os.geteuid() == 0:
            pytest.skip("root writes through a read-only directory")
        root = tmp_path / "read_only"
        root.mkdir()
        root.chmod(0o555)
        return str(root), str(root)
    raise AssertionError(kind)


def _archive_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, ArchiveWarning)]


@pytest.mark.parametrize("kind", KINDS)
def test_unwritable_archive_returns_the_binary_and_warns_once(tmp_path, restore_archive, kind):
    spec = probes.spec("axpb")
    expected = runtime.compile_for(spec, ARCH)
    root, named = _break(kind, tmp_path, expected.key)
    runtime.set_archive(root)
    cache = runtime.cache()
    cache.reset_stats()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first = runtime.cached_binary(spec, ARCH)
        again = runtime.cached_binary(spec, ARCH)
        other = runtime.cached_binary(probes.spec("noop"), ARCH)
    assert first.binary == expected.binary and again.binary == expected.binary
    assert first.key.digest == expected.key.digest
    assert other.binary[:4] == b"\x7fELF"
    assert cache.stats()["compiles"] == 3
    got = _archive_warnings(record)
    assert len(got) == 1, got
    assert got[0].startswith("[archive] cannot ") and named in got[0], got[0]
    assert "stay" in got[0] and "in memory only" in got[0]


def test_dir_at_entry_path_skips_only_that_entry(tmp_path, restore_archive):
    spec = probes.spec("axpb")
    key = _core.kernel_key(spec, ARCH)
    _, entry = _break("dir_at_entry_path", tmp_path, key)
    runtime.set_archive(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        runtime.cached_binary(spec, ARCH)
        runtime.cached_binary(probes.spec("noop"), ARCH)
    (message,) = _archive_warnings(record)
    assert re.search("Is a directory", message), message
    assert os.path.isdir(entry), "a directory the archive did not make was removed"
    archive = _core.BinaryArchive(str(tmp_path))
    assert archive.contains(_core.kernel_key(probes.spec("noop"), ARCH))
    assert not archive.contains(key)


def test_archive_fixed_later_is_written_again(tmp_path, restore_archive):
    # Unwritable is a property of one opened archive, not of the process.
    root = tmp_path / "archive"
    root.write_bytes(b"")
    runtime.set_archive(root)
    with pytest.warns(ArchiveWarning, match=re.escape(str(root))):
        runtime.cached_binary(probes.spec("axpb"), ARCH)
    root.unlink()
    runtime.set_archive(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ArchiveWarning)
        runtime.cached_binary(probes.spec("axpb"), ARCH)
    assert len(_core.BinaryArchive(str(root)).entries()) == 1


def test_compile_forbidden_still_raises_and_the_warning_still_comes(tmp_path, restore_archive):
    root = tmp_path / "archive"
    root.write_bytes(b"")
    runtime.set_archive(root)
    spec = probes.spec("write_to")
    with (
        runtime.compiles_forbidden(),
        pytest.warns(ArchiveWarning, match=re.escape(str(root))),
        pytest.raises(ap.CompileForbidden, match="write_to"),
    ):
        runtime.cached_binary(spec, ARCH)


@pytest.mark.parametrize("kind", ["root_under_proc", "root_is_a_file", "dir_at_entry_path"])
def test_prebuild_raises_naming_the_path(tmp_path, restore_archive, kind):
    spec = probes.spec("axpb")
    root, named = _break(kind, tmp_path, _core.kernel_key(spec, ARCH))
    runtime.set_archive(root)
    with pytest.raises(RuntimeError, match=r"^\[archive\] cannot .*" + re.escape(named)):
        runtime.prebuild([spec], arch=ARCH)


def test_archive_object_raises_naming_path_and_reason(tmp_path):
    cubin = runtime.compile_for(probes.spec("axpb"), ARCH)
    file_root = tmp_path / "file"
    file_root.write_bytes(b"")
    archive = _core.BinaryArchive(str(file_root))
    assert archive.load(cubin.key) is None  # nothing there to read: a miss
    with pytest.raises(RuntimeError, match=re.escape(str(file_root)) + ".*Not a directory"):
        archive.store(cubin.key, cubin.binary)
    archive = _core.BinaryArchive(str(tmp_path / "ok"))
    os.makedirs(archive.path_for(cubin.key))
    with pytest.raises(RuntimeError, match="cannot read .*Is a directory"):
        archive.load(cubin.key)
    assert archive.discarded == 0


def _lock_files(root) -> list[str]:
    return [f for _, _, files in os.walk(root) for f in files if f.endswith(".lock")]


def test_no_lock_file_is_left_after_a_compile(tmp_path, restore_archive):
    runtime.set_archive(tmp_path)
    runtime.cached_binary(probes.spec("axpb"), ARCH)
    runtime.prebuild([probes.spec("noop")], arch=ARCH)
    assert len(_core.BinaryArchive(str(tmp_path)).entries()) == 2
    assert _lock_files(tmp_path) == []


def _compile_once(root, barrier):
    # The exit status is how many compiles this process made (100: it failed).
    try:
        runtime.set_archive(root)
        before = runtime.cache().stats()["compiles"]
        barrier.wait(timeout=60)
        runtime.cached_binary(probes.spec("globaltimer_stamps"), ARCH)
        os._exit(runtime.cache().stats()["compiles"] - before)
    except BaseException:
        os._exit(100)


def test_processes_that_miss_at_once_compile_once(tmp_path):
    # Check, lock, check again, with the lock file unlinked by each holder while
    # the others wait on it: one compile, the others read it, no file left.
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_compile_once, args=(str(tmp_path), barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=300)
    assert sum(p.exitcode for p in procs) == 1, [p.exitcode for p in procs]
    assert _lock_files(tmp_path) == []


def _touch(path, age_seconds: float) -> str:
    open(path, "wb").close()
    t = time.time() - age_seconds
    os.utime(path, (t, t))
    return str(path)


def test_opening_an_archive_removes_stale_temp_and_lock_files(tmp_path, restore_archive):
    arch = tmp_path / ARCH
    arch.mkdir()
    old_temp = _touch(arch / "axpb-0123.bin.4242.99.0.tmp", DAY)
    fresh_temp = _touch(arch / "noop-0123.bin.4242.99.1.tmp", 0)
    old_lock = _touch(arch / "axpb-0123.lock", DAY)
    fresh_lock = _touch(arch / "noop-0123.lock", 0)
    held_lock = _touch(arch / "write_to-0123.lock", DAY)
    entry = _touch(arch / "axpb-0123.bin", DAY)
    not_ours = _touch(arch / "notes.tmp", DAY)
    with open(held_lock, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a process compiling right now
        _core.BinaryArchive(str(tmp_path))
        assert os.path.exists(held_lock)
    for gone in (old_temp, old_lock):
        assert not os.path.exists(gone), gone
    for kept in (fresh_temp, fresh_lock, entry, not_ours):
        assert os.path.exists(kept), kept
    # set_archive opens the archive the same way.
    os.utime(fresh_temp, (time.time() - DAY,) * 2)
    runtime.set_archive(tmp_path)
    assert not os.path.exists(fresh_temp)


def test_take_warnings_is_empty_when_nothing_failed(tmp_path, restore_archive):
    runtime.set_archive(tmp_path)
    runtime.cached_binary(probes.spec("axpb"), ARCH)
    assert runtime.cache().take_warnings() == []


def _simple_inputs(rng):
    return tuple(rng.standard_normal((1, 2, 33, 64)).astype(np.float32) for _ in range(3))


@pytest.mark.gpu
@pytest.mark.parametrize("kind", KINDS)
def test_simple_attention_runs_with_an_unwritable_archive(tmp_path, restore_archive, rng, kind):
    from attention_proto import cuda
    from attention_proto.ops import simple

    key = _core.kernel_key(simple.spec(64, "float32"), cuda.properties()["arch"])
    root, named = _break(kind, tmp_path, key)
    runtime.set_archive(root)
    cache = runtime.cache()
    cache.clear()  # so the kernel comes through the broken archive
    q, k, v = _simple_inputs(rng)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        out = ap.simple_attention(q, k, v)
        hits = cache.stats()["hits"]
        again = ap.simple_attention(q, k, v, causal=True)
    got = _archive_warnings(record)
    assert len(got) == 1 and named in got[0], got
    assert cache.stats()["hits"] > hits  # the second call came from memory
    assert_close_to_reference(out, q, k, v, "float32")
    assert_close_to_reference(again, q, k, v, "float32", causal=True)


@pytest.mark.gpu
def test_pipeline_leaves_no_lock_file(tmp_path, restore_archive, rng):
    runtime.set_archive(tmp_path)
    runtime.cache().clear()
    q, k, v = _simple_inputs(rng)
    assert_close_to_reference(ap.simple_attention(q, k, v), q, k, v, "float32")
    assert len(_core.BinaryArchive(str(tmp_path)).entries()) == 1
    assert _lock_files(tmp_path) == []
