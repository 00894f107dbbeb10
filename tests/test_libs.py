"""Library search order and the CPU-only import path."""

from __future__ import annotations

import subprocess
import sys

from attention_proto import _libs, cuda


def test_env_override_comes_first(monkeypatch, tmp_path):
    fake = tmp_path / "libnvrtc.so.13"
    monkeypatch.setenv(_libs.NVRTC_ENV, str(fake))
    assert _libs.nvrtc_candidates()[0] == str(fake)
    monkeypatch.setenv(_libs.LIBCUDA_ENV, "/opt/x/libcuda.so.1")
    assert _libs.driver_candidates()[0] == "/opt/x/libcuda.so.1"


def test_pip_wheel_nvrtc_is_found_before_the_system_loader():
    cands = _libs.nvrtc_candidates()
    wheel = [c for c in cands if "/nvidia/" in c]
    assert wheel, f"the nvidia-cuda-nvrtc wheel was not found: {cands}"
    assert cands.index(wheel[0]) < cands.index("libnvrtc.so.13")
    assert cuda.compiler_available(), cuda.status()["nvrtc"]


def test_headers_found():
    assert _libs.include_dir().endswith("include")


def test_status_explains_what_is_missing():
    s = cuda.status()
    assert set(s) == {"driver", "nvrtc", "device", "include_dir"}
    if not cuda.is_available():
        assert cuda.unavailable_reason()


def test_import_in_a_fresh_process_without_touching_the_gpu():
    code = "import attention_proto as ap; print(ap.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == __import__("attention_proto").__version__
