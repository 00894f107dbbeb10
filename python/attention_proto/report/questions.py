"""The seed's six questions, each answered from findings (numbers and links to
their ids) and ending with what is not yet measured. Sentences that judge
(on par, behind) follow from the numbers by the thresholds written here."""

from __future__ import annotations

from ..findings.prototypes import PROTOTYPES, label
from ..ops import tuning
from .doc import Doc, num

PAR = 0.95  # a ratio to a peer at or above this reads "on par"
ARCH = "sm_90a"  # the tuning table's key for the GPU the findings come from (Hopper)


def _shape(d, causal):
    return f"d{d}" + (".causal" if causal else "")


def _host(record) -> str:
    return record["id"].split("@")[1]


def tiles(doc: Doc, plots: str) -> None:
    doc.add("## 1. Optimal tile per head dim (Proto 1)", "")
    rows = []
    for d in (64, 128):
        for causal in (False, True):
            best = doc.get(f"flash.best-tile.{_shape(d, causal)}.n8192")
            fa2 = doc.get(f"flash.vs-sdpa-flash.{_shape(d, causal)}.n8192")
            causal_text = "yes" if causal else "no"
            if best is None:
                rows.append([str(d), causal_text, "not measured", "", "", ""])
                continue
            tile = best["evidence"]["config"]["config"]
            shipped = "m{}n{}s{}w{}".format(*tuning.TABLE.get((ARCH, d, causal), ("?",) * 4))
            ships = "yes" if tile == shipped else f"no: `{shipped}`"
            cells = [f"`{tile}`", doc.value(best), doc.value(fa2), ships, doc.cite(best)]
            rows.append([str(d), causal_text, *cells])
    doc.add(
        "bf16, N = 8192, B*N = 16K tokens, H = 2048 / D: the fastest of every swept tile "
        "(query rows, keys per step, K/V stages, warps) in one run.",
        "",
    )
    header = ["D", "causal", "best tile", "TFLOP/s", "x FA2", "in ops/tuning.py", "finding"]
    doc.table(header, rows)
    every = doc.find("flash.vs-sdpa-flash-every-n.")
    if every:
        doc.add(
            f"Over N = 512-16K the tuned kernel runs at {doc.span(every)} SDPA's FLASH backend "
            f"(FlashAttention 2) at its worst N per shape ({doc.cite_all(every)}). The sweep, "
            "per tile and N (bold: the fastest at that N):",
            "",
            f"![tile sweep D=64]({plots}/tile-sweep-d64.png)",
            f"![tile sweep D=128]({plots}/tile-sweep-d128.png)",
            f"![TFLOP/s vs N against peers]({plots}/flash-vs-peers.png)",
            "",
        )
    cudnn = doc.find("flash.vs-sdpa-cudnn.")
    hopper = doc.find("hopper.vs-cudnn.")
    if cudnn:
        doc.add(
            f"cuDNN stays ahead of the mma.sync kernel: it runs at {doc.span(cudnn)} cuDNN's "
            f"speed at N = 8K ({doc.cite_all(cudnn)}); mma.sync at 255 registers leaves no room "
            "to overlap softmax with the matrix units, which is what a wgmma/TMA kernel changes.",
            "",
        )
    if hopper:
        steps = doc.find("hopper.ablation.")
        wins = doc.get("hopper.mma-sync-wins")
        best = doc.get("hopper.best-variant")
        doc.add(
            "**The Hopper wgmma kernel** (what flash_attention runs on sm_90a from N = 512, "
            "flash.HOPPER_PLAN's tile per D, mask and key count): at N = 8K the public call "
            f"runs at {doc.span(hopper)} cuDNN's speed ({doc.cite_all(hopper)}), each timed in "
            "batches of its own calls, in turn"
            + _call_by_call(hopper)
            + ". "
            + (
                f"Its ablation steps, (a) wgmma with cp.async to (e) warp-specialized "
                f"ping-pong, gain {doc.span(steps)} over step (a) at the longest N "
                f"({doc.cite_all(steps)}); "
                if steps
                else ""
            )
            + (f"the best tiles: {best['content']} {doc.cite(best)} " if best else "")
            + (
                f"The mma.sync kernel beats every wgmma variant in {doc.value(wins)} "
                f"{doc.cite(wins)}."
                if wins
                else ""
            ),
            "",
        )
    untried = "" if hopper else ", a wgmma/TMA kernel"
    doc.add(
        f"Not yet measured: fp16 (it shares the bf16 entry), GPUs other than the "
        f"{doc.gpu_name}, head dims other than 64 and 128{untried}.",
        "",
    )


def _call_by_call(records: list[dict]) -> str:
    """The same ratios timed call by call, where the run has them: one clock
    for both, since at its power limit the card sets its clock by the kernel
    it runs (batches let each kernel run at its own)."""
    vals = sorted(
        r["evidence"]["config"]["call_by_call_over_cudnn"]
        for r in records
        if "call_by_call_over_cudnn" in r["evidence"]["config"]
    )
    if len(vals) != len(records):
        return ""
    return (
        f"; timed call by call in turn instead, at one clock, {num(vals[0], 3)}x-"
        f"{num(vals[-1], 3)}x (batches let each kernel run at the clock its power draw sets)"
    )


def _compile_sentence(doc: Doc) -> str:
    serial = doc.find("specialization.cold-compile-serial@")
    par = doc.find("specialization.cold-compile-parallel@")
    parts = [f"{doc.value(r)} serially on {_host(r)} {doc.cite(r)}" for r in serial]
    parts += [f"{doc.value(r)} amortized over all cores of {_host(r)} {doc.cite(r)}" for r in par]
    return (
        "**Each specialization costs a cold compile**: a flash variant takes "
        + "; ".join(parts)
        + "."
    )


def _archive_sentence(doc: Doc) -> str:
    load_all = doc.get("runtime.archive-load-vs-compile")
    load_flash = doc.get("specialization.archive-load-vs-serial-compile")
    first = doc.get("specialization.first-dispatch")
    builds = doc.find("specialization.archive-build@")
    said = ["**The archive removes it**:"]
    if load_all:
        said.append(
            f"read + module load of a cubin takes {num(load_all['evidence']['config']['load_ms'])}"
            f" ms, {doc.value(load_all)} less than the mean cold compile of every shipped kernel "
            f"{doc.cite(load_all)};"
        )
    if load_flash:
        said.append(
            f"{doc.value(load_flash)} less than a serial compile for flash variants "
            f"{doc.cite(load_flash)}."
        )
    if first:
        cold = first["evidence"]["config"]["first_dispatch_cold_s"]
        said.append(
            f"A fresh process reaches its first flash dispatch in {doc.value(first)} with a "
            f"warm archive, {num(cold)} s with an empty one {doc.cite(first)}."
        )
    if builds:
        times = "; ".join(f"{doc.value(r)} on {_host(r)} {doc.cite(r)}" for r in builds)
        said.append(f"Building the {builds[0]['evidence']['n']}-variant archive took {times}.")
    return " ".join(said)


def dispatch(doc: Doc, plots: str) -> None:
    doc.add("## 2. Dispatch strategy: constants vs archive vs stitching (Protos 4, 2)", "")
    doc.add(_compile_sentence(doc), "", _archive_sentence(doc), "")
    doc.add(f"![compile vs archive load]({plots}/compile-vs-archive.png)", "")
    inline = doc.get("stitching.inline-overhead")
    table = doc.get("stitching.function-table-overhead")
    if inline and table:
        cfg = inline["evidence"]["config"]
        stale = (
            f" Both were measured at `{cfg['config']}`, no longer the tuned tile "
            f"(`{cfg['tuned_config']}`): the verdict stands, the inline figure needs a re-run."
            if "stale-config" in inline["tags"]
            else ""
        )
        doc.add(
            f"**Stitching**: pieces inlined at compile time cost {doc.value(inline)} "
            f"{doc.cite(inline)}; the same pieces behind device function pointers cost "
            f"{doc.value(table)} {doc.cite(table)}, because the register-resident tiles cross "
            f"every call through local memory.{stale}",
            "",
        )
    host = doc.get("runtime.host-overhead-us")
    rec = doc.get("specialization.runtime-vs-precompile")
    doc.add(
        "**Recommendation**: compose variants at compile time (specialization constants and "
        "inlined pieces), never through function tables in the inner loop; ship a prebuilt "
        "archive for every known variant set and let run-time specialization fill it for the "
        f"rest: one second of startup covers {num(rec['evidence']['value'])} cold compiles "
        f"{doc.cite(rec)}. A dispatch from Python costs {doc.value(host)} of host time "
        f"{doc.cite(host)}."
        if rec and host
        else "**Recommendation**: not enough measured to make one.",
        "",
        "Not yet measured: the archive on a second GPU model (binaries are per arch), and "
        "stitching at the current tuned tile.",
        "",
    )


def _call_case(record) -> str:
    c = record["evidence"]["config"]
    kind = "MHA" if c["kv_heads"] == c["heads"] else f"GQA {c['heads']}/{c['kv_heads']}"
    use = record["id"].split(".")[2]  # decode or serving
    return f"{use}, {kind}, context {c['context']}, B={c['batch']}"


def paged(doc: Doc, plots: str) -> None:
    doc.add("## 3. Paged-attention viability (Proto 3)", "")
    rows, ratios = [], []
    for key, kind in (("mha", "MHA 32/32"), ("gqa-32-8", "GQA 32/8")):
        best = doc.get(f"paged.best-page-size.{key}")
        cudnn = doc.get(f"paged.vs-sdpa-cudnn.{key}")
        over = doc.get(f"paged.paging-overhead.{key}")
        if not (best and cudnn and over):
            continue
        ratios.append(cudnn["evidence"]["value"])
        rows.append(
            [
                kind,
                str(best["evidence"]["config"]["page_size"]),
                doc.value(best),
                doc.value(cudnn),
                doc.value(over),
                doc.cite_all([best, cudnn, over]),
            ]
        )
    doc.add("Decode, D = 128, bf16, 256K K/V tokens, contexts 4K-64K, one run:", "")
    header = ["heads", "page size", "K/V TB/s (mean)", "x SDPA cuDNN (min)", "paging cost (max)"]
    doc.table([*header, "findings"], rows)
    mma = doc.get("paged.gqa-mma-vs-lanes")
    split = doc.get("paged.split-kv")
    if ratios:
        verdict = "on par with" if min(ratios) >= PAR else "behind"
        doc.add(
            f"**Viable**: paged decode is {verdict} cuDNN decoding contiguous K/V (at least "
            f"{num(min(ratios))}x) and the page table costs a few percent at most. For GQA, "
            f"scoring the head group on tensor cores is what gets it there: {doc.value(mma)} "
            f"the lane-shuffle path {doc.cite(mma)}.",
            "",
        )
    if split:
        contexts = split["evidence"]["config"]["contexts"]
        doc.add(
            (
                f"One partition per sequence was the fastest at every context measured "
                f"({contexts[0]}-{contexts[-1]}, B = 256K / context) {doc.cite(split)}; "
                "the default keeps 512-key partitions for long contexts with small batches."
            )
            if split["evidence"]["value"] <= 1.0
            else f"The two-phase split pays up to {doc.value(split)} {doc.cite(split)}.",
            "",
        )
    doc.add(f"![decode bandwidth vs context]({plots}/decode-bandwidth.png)", "")
    calls = doc.find("paged.public-call.")
    if calls:
        doc.add(
            "Through the public call with torch tensors, against the fastest SDPA backend "
            "timed the same way (serving sizes are host-bound for SDPA):",
            "",
        )
        rows = [[_call_case(r), doc.value(r), doc.cite(r)] for r in calls]
        doc.table(["case (ctx 4K-16K, page size 16)", "ours x best SDPA", "finding"], rows)
    doc.add(
        "Not yet measured: fp16 and D = 64 decode, pools fragmented by a real allocator, a "
        "partition-size heuristic.",
        "",
    )


def _crossover_t(record) -> str:
    t = record["evidence"]["config"]["crossover_t"] if record else None
    return f"T = {t}" if t is not None else "none measured"


def linear(doc: Doc, plots: str) -> None:
    doc.add("## 4. Linear-attention crossover (Proto 6)", "")
    chunks = {d: doc.get(f"linear.best-chunk.d{d}") for d in (64, 128)}
    if not any(chunks.values()):
        doc.add(
            "Not measured: no `bench linear` run. What would answer it: the suite timing "
            "`linear_attention` against causal softmax attention over T at D = 64 and 128.",
            "",
        )
        return
    rows = []
    for d, chunk in chunks.items():
        if chunk is None:
            rows.append([str(d), "not measured", "", "", "", ""])
            continue
        cudnn = doc.get(f"linear.crossover.sdpa-cudnn.d{d}")
        ours = doc.get(f"linear.crossover.flash.d{d}")
        fla = doc.get(f"linear.vs-fla-from-4k.d{d}")
        rows.append(
            [
                str(d),
                doc.value(chunk),
                f"{_crossover_t(cudnn)} {doc.cite(cudnn)}",
                f"{_crossover_t(ours)} {doc.cite(ours)}",
                f"{doc.value(fla)} {doc.cite(fla)}",
                doc.cite(chunk),
            ]
        )
    doc.add(
        "Causal, bf16, B*T = 32K tokens, H = 16, T = 1K-64K; the crossover is the first T "
        "from which chunked linear attention (best chunk) is faster at every longer T. "
        "Against flash-linear-attention: the lowest speed ratio from T = 4K on (>1: ours faster).",
        "",
    )
    header = ["D", "best chunk", "beats cuDNN from", "beats our flash from", "x fla (min)"]
    doc.table([*header, "finding"], rows)
    doc.add(f"![linear vs softmax attention over T]({plots}/linear-crossover.png)", "")
    rec = doc.get("linear.recommendation")
    if rec:
        doc.add(f"**Recommendation** {doc.cite(rec)}: {rec['content']}", "")
    doc.add(
        "Not yet measured: a chunk-parallel state pass for long sequences at small batch; "
        "fp16 timings; accuracy is tested against FP64 (tests/test_gpu_linear.py), not "
        "benchmarked.",
        "",
    )


def variants(doc: Doc, plots: str) -> None:
    doc.add("## 5. Variant overheads: RoPE, ALiBi, GQA (Proto 7)", "")
    rope = doc.get("variants.rope-standalone")
    rope_fused = doc.find("variants.rope-fused.")
    rope_kernel = doc.find("variants.rope-in-kernel.")
    alibi = doc.find("variants.alibi-fused.")
    gqa = doc.find("variants.gqa.")
    consts = doc.get("variants.constants")
    if rope or alibi or gqa:
        rows = [["RoPE standalone (q and k), % of attention", doc.value(rope), doc.cite(rope)]]
        rows += [
            [r["title"], doc.value(r), doc.cite(r)] for r in rope_fused + rope_kernel + alibi + gqa
        ]
        doc.add(
            "D = 128, H = 32, bf16, public calls (the in-kernel RoPE rows: kernel only); the "
            "worst case over N = 2K and 8K:",
            "",
        )
        doc.table(["variant", "cost (max)", "finding"], rows)
        if consts:
            doc.add(f"{consts['content']} {doc.cite(consts)}", "")
        fused_min = min((r["evidence"]["value"] for r in rope_fused), default=None)
        if rope and fused_min is not None and fused_min > rope["evidence"]["value"]:
            doc.add(
                "RoPE fused as measured (the findings say how it was fused) costs more than "
                "the standalone pass on q and k in every measured case.",
                "",
            )
        goal = doc.get("variants.rope-goal")
        if goal:  # runs since session 24: the goal, with each part timed alone
            doc.add(f"**Fused RoPE's goal** {doc.cite(goal)}: {goal['content']}", "")
        if not rope_fused:
            doc.add("Not yet measured: RoPE fused into the kernel's Q/K loads.", "")
        return
    mma = doc.get("paged.gqa-mma-vs-lanes")
    gqa_pg = doc.get("paged.best-page-size.gqa-32-8")
    mha = doc.get("paged.best-page-size.mha")
    doc.add(
        "RoPE (a standalone kernel) and ALiBi (fused into flash as a constant) are built and "
        "tested against FP64, not yet timed (`bench variants`). What is known about GQA comes "
        f"from Proto 3's decode kernels: GQA 32/8 reads K/V at {doc.value(gqa_pg)} "
        f"{doc.cite(gqa_pg)} against {doc.value(mha)} for MHA {doc.cite(mha)}, once the "
        f"group's heads share tensor-core tiles ({doc.value(mma)} over per-key lane "
        f"reductions {doc.cite(mma)}).",
        "",
        "Not yet measured: RoPE and ALiBi against the plain kernel; GQA prefill against MHA "
        "prefill; fused RoPE (not built).",
        "",
    )


def recommendations(doc: Doc, plots: str) -> None:
    doc.add("## 6. DSL and framework-extension recommendations (Protos 5, 8)", "")
    twin = doc.find("dsl.speed.")
    rec = doc.get("dsl.recommendation")
    wgmma = doc.find("dsl.tensor-core-instructions")
    if twin and rec:
        doc.add(
            f"**DSL (Proto 5)**: the Triton twin against our hand-written kernel at the "
            f"longest N of each (D, causal): {doc.span(twin)} ({doc.cite_all(twin)}); the "
            f"tensor-core instructions each compiles to for sm_90a: {doc.cite_all(wgmma)}. "
            f"{rec['content']} {doc.cite(rec)}",
            "",
        )
    else:
        flex = doc.find("flash.vs-flex.")
        if flex:
            doc.add(
                "**DSL**: no Triton twin run yet. The nearest data point is FlexAttention, "
                "which torch.compile generates in Triton: at N = 8K the hand-written mma.sync "
                f"kernel runs at {doc.span(flex)} Flex's speed ({doc.cite_all(flex)}).",
                "",
            )
    op = doc.get("integration.custom-op-overhead")
    glue = doc.get("integration.custom-op-glue")
    hosts = doc.find("integration.host-cost.")
    public = doc.find("integration.public-vs-kernel.")
    if op and glue:
        floor = op["evidence"]["config"]["floor_us"]
        direct = "; ".join(
            f"{doc.value(h)} for {h['id'].split('.')[2][:5]} {doc.cite(h)}" for h in hosts
        )
        doc.add(
            f"**Framework extension (Proto 8)**: both ops register as torch custom ops in "
            f"{doc.value(glue)} of Python {doc.cite(glue)}, which buys torch.compile and "
            f"CUDA-graph capture. A call through the custom op costs {doc.value(op)} more host "
            f"time than the direct call {doc.cite(op)}; an empty op registered the same way "
            f"costs {num(floor)} us, its output allocation included. The direct call costs "
            f"{direct}; "
            f"on the GPU the public flash call runs at {doc.span(public)} the kernel alone "
            f"({doc.cite_all(public)}).",
            "",
            "**Recommendation**: ship the custom ops for compiled and captured graphs and the "
            "direct calls for eager, latency-bound loops; the host path, not the kernel, is what "
            "to shorten next.",
            "",
        )
    against_public = rec is not None and "public flash_attention call" in rec["content"]
    doc.add(
        "Not yet measured: "
        + ("" if against_public else "the Triton twin against the public call's wgmma kernel; ")
        + "frameworks other than torch.",
        "",
    )


def status(doc: Doc) -> None:
    """Findings per prototype, and what to re-run."""
    doc.add("## What is measured, and what is not", "")
    counts = {label(p.number): 0 for p in PROTOTYPES}
    for r in doc.by_id.values():
        counts[r["prototype"]] += 1
    rows = [
        [label(p.number), p.question, "yes" if p.built else "no", str(counts[label(p.number)])]
        for p in PROTOTYPES
    ]
    doc.table(["prototype", "question", "built", "findings"], rows)
    missing = [k for k, v in counts.items() if v < 2]
    stale = sorted(i for i, r in doc.by_id.items() if "stale-config" in r["tags"])
    noisy = sorted(i for i, r in doc.by_id.items() if r["confidence"] == "low")
    doc.add(
        f"- Prototypes with fewer than 2 findings (no runs yet): {', '.join(missing)}."
        if missing
        else "- Every prototype has at least 2 findings (the validator's per-prototype rule).",
        f"- Measured at a configuration that has since changed (re-run): "
        f"{', '.join(f'`{i}`' for i in stale) or 'none'}.",
        f"- Low confidence (CV >= 5 %): {', '.join(f'`{i}`' for i in noisy) or 'none'}.",
        "",
    )


SECTIONS = (tiles, dispatch, paged, linear, variants, recommendations)
