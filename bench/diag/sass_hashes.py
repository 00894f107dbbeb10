"""SHA-256 of every shipped kernel's SASS (sm_90a, compiled here by NVRTC), one
line per spec: compare two checkouts to show a source change leaves some
kernels' machine code as it was (`python bench/diag/sass_hashes.py [substring]`)."""

import hashlib
import sys
from concurrent.futures import ThreadPoolExecutor

from attention_proto import catalog, runtime, sass


def main() -> None:
    want = sys.argv[1] if len(sys.argv) > 1 else ""
    specs = [s for s in catalog.all_specs() if want in s.name]

    def one(spec):
        text = sass.disassemble(runtime.compile_for(spec, "sm_90a").binary)
        body = "\n".join(line for line in text.splitlines() if not line.startswith("//"))
        return spec.name, hashlib.sha256(body.encode()).hexdigest()[:16]

    with ThreadPoolExecutor(2) as pool:
        for name, digest in sorted(pool.map(one, specs)):
            print(digest, name)


if __name__ == "__main__":
    main()
