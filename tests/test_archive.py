"""The binary archive on real cubins: round trip, corruption, truncation,
concurrent writers, prebuild, and the compile-forbidden switch (CPU only)."""

from __future__ import annotations

import multiprocessing as mp
import os

import pytest

from attention_proto import CompileForbidden, _core, probes, runtime


@pytest.fixture(scope="module")
def cubin():
    return runtime.compile_for(probes.spec("axpb"), "sm_90a")


def test_store_then_load_returns_the_same_bytes(tmp_path, cubin):
    archive = _core.BinaryArchive(str(tmp_path))
    assert archive.load(cubin.key) is None
    archive.store(cubin.key, cubin.binary)
    assert archive.contains(cubin.key)
    assert archive.load(cubin.key) == cubin.binary
    path = archive.path_for(cubin.key)
    assert path.startswith(str(tmp_path / "sm_90a"))
    assert os.path.basename(path).startswith("axpb-")


@pytest.mark.parametrize("damage", ["flip_payload", "truncate", "empty", "wrong_digest"])
def test_damaged_entry_is_discarded_not_returned(tmp_path, cubin, damage):
    archive = _core.BinaryArchive(str(tmp_path))
    archive.store(cubin.key, cubin.binary)
    path = archive.path_for(cubin.key)
    data = bytearray(open(path, "rb").read())
    if damage == "flip_payload":
        data[-100] ^= 0xFF
    elif damage == "truncate":
        data = data[: len(data) // 2]
    elif damage == "empty":
        data = bytearray()
    else:
        data[8] = ord("0") if data[8] != ord("0") else ord("1")
    open(path, "wb").write(bytes(data))
    assert archive.load(cubin.key) is None
    assert archive.discarded == 1
    assert not os.path.exists(path)


def _store_many(root, binary_path, digest_source):
    spec = probes.spec(digest_source)
    result = runtime.compile_for(spec, "sm_90a")
    archive = _core.BinaryArchive(root)
    for _ in range(30):
        archive.store(result.key, result.binary)
        got = archive.load(result.key)
        assert got is None or got == result.binary
    return 0


def test_two_processes_writing_one_key_leave_a_valid_entry(tmp_path, cubin):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_store_many, args=(str(tmp_path), "", "axpb")) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    archive = _core.BinaryArchive(str(tmp_path))
    assert archive.load(cubin.key) == cubin.binary
    leftovers = [f for f in os.listdir(tmp_path / "sm_90a") if f.endswith(".tmp")]
    assert leftovers == []


def test_prebuild_fills_the_archive_then_compiles_nothing(tmp_path):
    before = runtime.archive_root()
    try:
        runtime.set_archive(tmp_path)
        specs = probes.all_specs()
        first = runtime.prebuild(specs, arch="sm_90a")
        assert first == {"arch": "sm_90a", "compiled": len(specs), "total": len(specs)}
        with runtime.compiles_forbidden():
            again = runtime.prebuild(specs, arch="sm_90a")
        assert again["compiled"] == 0
        assert len(_core.BinaryArchive(str(tmp_path)).entries()) == len(specs)
    finally:
        runtime.set_archive(before)


def test_parallel_prebuild_counts_each_compile_once(tmp_path):
    # jobs > 1 compiles several at once; a spec given twice is built once, and
    # the count is per spec (not read off the shared compile counter).
    before = runtime.archive_root()
    try:
        runtime.set_archive(tmp_path)
        specs = probes.all_specs()
        first = runtime.prebuild([*specs, specs[0]], arch="sm_90a", jobs=4)
        assert first == {"arch": "sm_90a", "compiled": len(specs), "total": len(specs)}
        with runtime.compiles_forbidden():
            assert runtime.prebuild(specs, arch="sm_90a", jobs=4)["compiled"] == 0
        archive = _core.BinaryArchive(str(tmp_path))
        for spec in specs:
            assert archive.contains(_core.kernel_key(spec, "sm_90a"))
        assert len(archive.entries()) == len(specs)
    finally:
        runtime.set_archive(before)


def test_compile_while_forbidden_raises_naming_the_kernel(tmp_path):
    before = runtime.archive_root()
    try:
        runtime.set_archive(tmp_path)
        with runtime.compiles_forbidden(), pytest.raises(CompileForbidden, match="noop"):
            runtime.prebuild([probes.spec("noop")], arch="sm_90a")
    finally:
        runtime.set_archive(before)


def test_bench_archive_loader_restores_the_archive(tmp_path):
    from attention_proto import BackendUnavailable, cuda
    from attention_proto.bench.common import load_all_from_archive

    before = runtime.archive_root()
    specs = probes.all_specs()
    try:
        runtime.set_archive(tmp_path)
        runtime.prebuild(specs, arch="sm_90a")
    finally:
        runtime.set_archive(before)
    if cuda.is_available() and cuda.properties()["arch"] == "sm_90a":
        stats = load_all_from_archive(str(tmp_path), specs)
        assert stats["compiles"] == 0 and stats["archive_loads"] == len(specs)
    else:
        with pytest.raises(BackendUnavailable):
            load_all_from_archive(str(tmp_path), specs)
    assert runtime.archive_root() == before
    assert not runtime.cache().compile_forbidden
