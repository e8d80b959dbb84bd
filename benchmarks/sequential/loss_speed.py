"""Speed of the full-catalogue cross-entropy (forward + backward) at ML-1M sizes, and of bf16 vs fp32 matmuls.

    nice -n 10 .venv/bin/python benchmarks/sequential/loss_speed.py --threads 1 [--baseline-commit 97ba044]

One batch of the causal ML-1M config has about 21,000 predicted positions (128 users x their real positions) over
3,416 items, hidden 64. Timed, interleaved (each variant in turn, best of ``--repeats``, so that all share the load):
``hf_recsys.heads.chunked_cross_entropy`` under bf16 autocast at a few chunk sizes, the same function of
``--baseline-commit`` (read with ``git show``: the version before the fused gradients), and ``F.cross_entropy`` over
the full fp32 logits (what the plain reference in ``ml1m.py`` does). Also the GFLOP/s of the shapes of a training step
in fp32 and bf16 (does bf16 pay on this CPU?). Writes ``results/loss_speed.md`` with machine, load and commit.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ml1m import machine  # noqa: E402


def heads_at(commit: str):
    """The ``hf_recsys.heads`` module of an older commit (its relative import made absolute)."""
    src = subprocess.run(["git", "show", f"{commit}:hf_recsys/heads.py"], capture_output=True, text=True, check=True)
    code = src.stdout.replace("from .modeling_utils import", "from hf_recsys.modeling_utils import")
    path = Path(tempfile.mkdtemp()) / f"heads_{commit}.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--baseline-commit", default=None)
    p.add_argument("--positions", type=int, default=21_000)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from hf_recsys import heads

    load_start = [round(x, 2) for x in os.getloadavg()]
    n, v, d = args.positions, 3416, 64
    g = torch.Generator().manual_seed(0)
    states = torch.randn(n, d, generator=g, requires_grad=True)
    items = (torch.randn(v, d, generator=g) * 0.5).requires_grad_()
    target = torch.randint(0, v, (n,), generator=g)

    def chunked(module, chunk):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = module.chunked_cross_entropy(states, items, target, 1.0, chunk)
            loss.backward()

        return run

    def full_fp32():
        F.cross_entropy(states @ items.T, target).backward()

    variants = {f"chunked, bf16, {c} rows a chunk": chunked(heads, c) for c in (256, 1228, 4911)}
    if args.baseline_commit:
        variants[f"chunked at {args.baseline_commit} (recomputed in backward), bf16, 4911 rows"] = chunked(
            heads_at(args.baseline_commit), 4911
        )
    variants["F.cross_entropy, full fp32 logits"] = full_fp32
    results = {k: [] for k in variants}
    for _ in range(args.repeats):  # interleaved
        for name, fn in variants.items():
            results[name].append(best_of(fn, 1))
    loss_rows = {k: min(t) for k, t in results.items()}

    mm_rows = []
    for m, k, nn_ in [(4096, 64, 3416), (4096, 3416, 64), (25600, 64, 64), (25600, 64, 256)]:
        a, b = torch.randn(m, k), torch.randn(k, nn_)
        ah, bh = a.bfloat16(), b.bfloat16()
        fp = min(best_of(lambda a=a, b=b: a @ b, 5) for _ in range(3))
        bf = min(best_of(lambda a=ah, b=bh: a @ b, 5) for _ in range(3))
        flops = 2 * m * k * nn_
        mm_rows.append((f"{m}x{k} @ {k}x{nn_}", flops / fp / 1e9, flops / bf / 1e9, bf / fp))
    load_end = [round(x, 2) for x in os.getloadavg()]
    mach = machine()
    lines = [
        "# Full-catalogue cross-entropy and bf16 matmul speed",
        "",
        f"{mach['date_utc']} UTC, commit {mach['commit']}, {mach['cpu']} ({mach['cores']} cores, AVX512-BF16 "
        f"{mach['avx512_bf16']}, AMX {mach['amx']}), torch {mach['torch']}, {args.threads} thread(s); load "
        f"{load_start} at start, {load_end} at end (other jobs share the machine; variants interleaved).",
        "",
        f"Loss forward + backward, {n:,} positions x {v:,} items, hidden {d} (one ML-1M batch):",
        "",
        "| variant | seconds (best of interleaved repeats) | vs F.cross_entropy fp32 |",
        "| --- | ---: | ---: |",
    ]
    ref = loss_rows["F.cross_entropy, full fp32 logits"]
    lines += [f"| {k} | {s:.3f} | {s / ref:.2f}x |" for k, s in loss_rows.items()]
    lines += ["", "| matmul | fp32 GFLOP/s | bf16 GFLOP/s | bf16 time / fp32 time |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {name} | {f:.1f} | {b:.1f} | {r:.2f} |" for name, f, b, r in mm_rows]
    text = "\n".join(lines) + "\n"
    (HERE / "results" / "loss_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
