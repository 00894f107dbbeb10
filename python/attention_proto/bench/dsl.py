"""Proto 5: the Triton twin against the hand-written kernels and cuDNN.

Code quality (no GPU needed, needs triton): the twin and the hand-written
mma.sync kernel compiled for sm_90a at the tuned tile of each (D, causal), read
through nvdisasm (see attention_proto.triton_twin.quality). Speed (a CUDA GPU,
torch and triton): TFLOP/s at D = 64/128, N = 1K-16K, causal and not, for the
twin at the tuned tile, the twin autotuned, the public flash_attention call as
dispatched (on sm_90a the Hopper wgmma plan: flash.HOPPER_PLAN; `public_kernel`
names it), the mma.sync kernel by name and SDPA's cuDNN backend, in the same
run, timed as the callpath suite times (CUDA events, median of batches). Until
session 21 the run timed the wgmma kernel's ablation steps (a)-(c) kernel only
instead of the public call.
"""

from __future__ import annotations

from .. import cuda
from .common import environment, run_block, skip_reason, table, write_json

TOKENS = 16384  # B * N per case: every N fills the GPU alike
LENGTHS = (1024, 2048, 4096, 8192, 16384)
HEADS = {64: 32, 128: 16}  # H * D = 2048


def _flops(b, h, n, d, causal):
    return 4 * b * h * n * n * d * (0.5 if causal else 1.0)


def _speed_rows(torch, quick):
    import attention_proto as ap
    from attention_proto import triton_twin
    from attention_proto.ops import flash
    from attention_proto.ops.tuning import best_config
    from attention_proto.triton_twin import autotuned

    from .callpath import _gpu_time, _sdpa

    cudnn = _sdpa(torch, "CUDNN_ATTENTION")
    rows = []
    for d in (64, 128):
        for causal in (False, True):
            for n in LENGTHS[:2] if quick else LENGTHS:
                b, h = max(TOKENS // n, 1), HEADS[d]
                qkv = tuple(
                    torch.randn(b, h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3)
                )
                c = causal
                mma_cfg = best_config(d, "bfloat16", causal)
                cases = {
                    "triton_table": lambda q, k, v, c=c: triton_twin.flash_attention(
                        q, k, v, causal=c
                    ),
                    "triton_autotune": lambda q, k, v, c=c: triton_twin.flash_attention(
                        q, k, v, causal=c, config="autotune"
                    ),
                    # The hand-written kernel a user gets (the wgmma plan on sm_90a).
                    "cuda_public": lambda q, k, v, c=c: ap.flash_attention(q, k, v, causal=c),
                    # The mma.sync kernel by name (its tuned tile).
                    "cuda_mma_sync": lambda q, k, v, c=c, cfg=mma_cfg: ap.flash_attention(
                        q, k, v, causal=c, config=cfg
                    ),
                    "sdpa_cudnn": lambda q, k, v, c=c: cudnn(q, k, v, c),
                }
                row = {"head_dim": d, "causal": causal, "seqlen": n, "batch": b, "heads": h}
                for name, fn in cases.items():
                    try:
                        t = _gpu_time(torch, fn, [qkv])
                    except Exception as e:  # a peer that refuses the case is reported, not fatal
                        row[f"{name}_error"] = str(e)[:80]
                        continue
                    row[f"{name}_tflops"] = _flops(b, h, n, d, causal) / t.median_s / 1e12
                    row[f"{name}_cv"] = t.cv
                row["public_kernel"] = flash.prepare(*qkv, causal=causal, allocate=False).reason
                row["autotune_best"] = str(autotuned.best())
                rows.append(row)
                del qkv
    return rows


def run(args) -> list[dict]:
    from ..triton_twin import quality

    env = environment()
    try:
        import triton
    except ImportError:
        print('SKIPPED dsl benchmark: triton is not installed (pip install ".[triton]")')
        return []
    env["triton"] = triton.__version__
    code = quality.table()
    print(table(code, list(quality.COLUMNS)))
    speed = []
    if not cuda.is_available():
        print(f"SKIPPED dsl timing: {skip_reason()}")
    else:
        import torch

        speed = _speed_rows(torch, args.quick)
        cols = ["head_dim", "causal", "seqlen"]
        cols += [f"{k}_tflops" for k in ("triton_table", "triton_autotune", "cuda_public")]
        cols += ["cuda_mma_sync_tflops", "sdpa_cudnn_tflops", "autotune_best"]
        print(table(speed, cols))
    result = {
        "env": env,
        "run": run_block("dsl", args, {"speed": {"batches": 30, "repeat": 10}}),
        "code_quality": code,
        "speed": speed,
    }
    write_json(args, result)
    return code + speed
