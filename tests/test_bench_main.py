"""The main job as a new user meets it: help per suite, each kernel compiled
once, results JSON and findings written to a default place and named on exit.
The catalog is cut to the probe kernels so this runs in seconds on a CPU."""

from __future__ import annotations

import json

import pytest

from attention_proto import catalog, cuda, probes, runtime
from attention_proto.bench import __main__ as bench

pytestmark = pytest.mark.skipif(
    not cuda.compiler_available(), reason="NVRTC not found: the foundation suite compiles"
)


def test_each_suite_has_its_own_help(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--help"])
    top = capsys.readouterr().out
    assert bench.main(["flash", "--help"]) == 0
    flash = capsys.readouterr().out
    assert bench.main(["paged", "-h"]) == 0
    paged = capsys.readouterr().out
    assert "suites:" in top and "callpath" in top
    assert flash != top and paged != flash
    assert "FlashAttention 2" in flash and "Needs: a CUDA GPU and torch" in flash


def test_main_job_compiles_once_and_says_where_it_wrote(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(catalog, "all_specs", probes.all_specs)
    compiled = []
    real = runtime.compile_for

    def counting(spec, arch=runtime.CPU_ARCH):
        compiled.append(spec.name)
        return real(spec, arch)

    monkeypatch.setattr(runtime, "compile_for", counting)
    assert bench.main([]) == 0
    out = capsys.readouterr().out
    assert sorted(compiled) == sorted(s.name for s in probes.all_specs())  # once each
    assert "== [1/1] foundation" in out
    written = sorted((tmp_path / "out").glob("*-foundation.json"))
    assert len(written) == 1 and f"results: {written[0]}" in out
    assert f"in {tmp_path / 'out' / 'findings.jsonl'}" in out
    data = json.loads(written[0].read_text())
    run = data["run"]
    assert run["suite"] == "foundation" and run["command"] == "python -m attention_proto.bench"
    assert run["time"][:10] == written[0].name[:10] and run["iterations"]["compile"] == 1
    lines = (tmp_path / "out" / "findings.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in lines]
    assert any(i.startswith("runtime.cold-compile-ms@") for i in ids)
    if not cuda.is_available():
        reason = cuda.unavailable_reason()
        assert reason in out  # whole, every line of it
