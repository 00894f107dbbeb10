"""SHA-256 of every shipped kernel's SASS (sm_90a, compiled here by NVRTC), one
line per spec: compare two checkouts to show a source change leaves some
kernels' machine code as it was (`python bench/diag/sass_hashes.py [substring]`).
The Hopper wgmma variants (flash_hopper.all_specs) count too; mangled symbol
names are masked, so a renamed device function does not read as new code."""

import hashlib
import re
import sys
from concurrent.futures import ThreadPoolExecutor

from attention_proto import catalog, runtime, sass
from attention_proto.ops import flash_hopper


def main() -> None:
    want = sys.argv[1] if len(sys.argv) > 1 else ""
    everything = {s.name: s for s in catalog.all_specs() + flash_hopper.all_specs()}
    specs = [s for name, s in everything.items() if want in name]

    def one(spec):
        text = sass.disassemble(runtime.compile_for(spec, "sm_90a").binary)
        body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
        body = re.sub(r"_Z\w+", "_Z", body)
        return spec.name, hashlib.sha256(body.encode()).hexdigest()[:16]

    with ThreadPoolExecutor(2) as pool:
        for name, digest in sorted(pool.map(one, specs)):
            print(digest, name)


if __name__ == "__main__":
    main()
