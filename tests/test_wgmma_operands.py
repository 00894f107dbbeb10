"""shaders/cuda/wgmma_operands.h is what tools/gen_wgmma_operands.py writes, and
its lists name every accumulator register of m64nN once."""

from __future__ import annotations

import importlib.util
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _generator():
    spec = importlib.util.spec_from_file_location("gen", ROOT / "tools" / "gen_wgmma_operands.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_header_is_the_generators_output():
    gen = _generator()
    assert gen.HEADER.read_text() == gen.text()


def test_each_width_names_its_registers_once():
    text = (ROOT / "shaders" / "cuda" / "wgmma_operands.h").read_text()
    for n in _generator().WIDTHS:
        operands = re.search(rf"#define AP_WGMMA_D{n}_OPERANDS (.*)", text).group(1)
        cells = re.findall(r'"\+f"\(d\[(\d+)\]\[(\d)\]\)', operands)
        assert [(int(j), int(e)) for j, e in cells] == [
            (j, e) for j in range(n // 8) for e in range(4)
        ]
        listing = re.search(rf'#define AP_WGMMA_D{n}_LIST "\{{(.*)\}}"', text).group(1)
        assert listing.split(",") == [f"%{i}" for i in range(n // 2)]
