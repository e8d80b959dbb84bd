"""Data-layer benchmark: load + validate + vocab + leave-last-out split of a large synthetic Parquet log, against
pyarrow alone reading the same file and grouping it by user.

Each stage runs in a fresh process (so peak RSS is its own), several times; the script writes Markdown results.

    python benchmarks/bench_data.py --rows 10000000 --out benchmarks/results/data.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone


def _rss_mib() -> float:
    """Peak resident set of this process (VmHWM; unlike ru_maxrss it is not inherited from the parent)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage_pipeline(path: str) -> dict:
    import datasets  # noqa: F401  (imported before timing: the loader imports it lazily)

    from hf_recsys.data import build_vocabs, encode_interactions, leave_last_out, load_interactions

    base = _rss_mib()
    t0 = time.perf_counter()
    ds = load_interactions(path)
    t1 = time.perf_counter()
    users, items = build_vocabs(ds)
    inter = encode_interactions(ds, users, items)
    t2 = time.perf_counter()
    splits = leave_last_out(ds, n_test=1)
    t3 = time.perf_counter()
    assert splits["test"].num_rows == len(users) and len(inter) == ds.num_rows
    return {
        "load_validate_s": t1 - t0,
        "vocab_encode_s": t2 - t1,
        "leave_last_out_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_rss_mib": _rss_mib(),
        "rss_after_imports_mib": base,
    }


def stage_baseline(path: str) -> dict:
    import pyarrow.parquet as pq

    base = _rss_mib()
    t0 = time.perf_counter()
    table = pq.read_table(path)
    t1 = time.perf_counter()
    grouped = table.group_by("user_id").aggregate([("item_id", "list"), ("timestamp", "list")])
    t2 = time.perf_counter()
    assert grouped.num_rows > 0
    return {
        "read_s": t1 - t0,
        "group_s": t2 - t1,
        "total_s": t2 - t0,
        "peak_rss_mib": _rss_mib(),
        "rss_after_imports_mib": base,
    }


def stage_generate(path: str, rows: int, users: int, items: int) -> dict:
    from hf_recsys.data import write_synthetic_parquet

    t0 = time.perf_counter()
    write_synthetic_parquet(path, num_users=users, num_items=items, num_interactions=rows, seed=0)
    return {"total_s": time.perf_counter() - t0, "peak_rss_mib": _rss_mib()}


def _run_stage(stage: str, path: str, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--stage", stage, "--path", path, *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _load() -> str:
    return " / ".join(f"{x:.2f}" for x in os.getloadavg())


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=10_000_000)
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--items", type=int, default=50_000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--path", default=None, help="Parquet file to use (generated when missing)")
    p.add_argument("--out", default=None, help="write the Markdown results here")
    p.add_argument("--stage", choices=["pipeline", "baseline", "generate"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.stage == "generate":
        print(json.dumps(stage_generate(args.path, args.rows, args.users, args.items)))
        return
    if args.stage:
        fn = stage_pipeline if args.stage == "pipeline" else stage_baseline
        print(json.dumps(fn(args.path)))
        return

    path = args.path or os.path.join(tempfile.mkdtemp(prefix="hf_recsys_bench_"), "log.parquet")
    gen = None
    if not os.path.exists(path):
        extra = ["--rows", str(args.rows), "--users", str(args.users), "--items", str(args.items)]
        gen = _run_stage("generate", path, *extra)
        print(f"generated {args.rows:,} rows in {gen['total_s']:.1f} s -> {path}", flush=True)
    load_before = _load()
    runs = {"pipeline": [], "baseline": []}
    for r in range(args.repeats):
        for stage in ("baseline", "pipeline"):
            res = _run_stage(stage, path)
            runs[stage].append(res)
            print(f"run {r + 1} {stage}: {res}", flush=True)
    load_after = _load()
    report = _markdown(args, path, gen, runs, load_before, load_after)
    print(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report)


def _med(runs: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _markdown(args, path, gen, runs, load_before, load_after) -> str:
    import numpy
    import pyarrow

    pipe, base = runs["pipeline"], runs["baseline"]
    ratio = _med(pipe, "total_s") / _med(base, "total_s")
    ratio_best = min(r["total_s"] for r in pipe) / min(r["total_s"] for r in base)
    lines = [
        "# Data layer benchmark",
        "",
        f"- Date: {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {os.cpu_count()} cores ({_cpu()}), shared with other jobs at the time; load average "
        f"(1/5/15 min) {load_before} before, {load_after} after.",
        f"- Python {platform.python_version()}, numpy {numpy.__version__}, pyarrow {pyarrow.__version__}.",
        f"- Data: synthetic log from `write_synthetic_parquet` ({args.rows:,} rows, {args.users:,} users, "
        f"{args.items:,} items, seed 0), Parquet"
        + (
            f"; generating and writing it took {gen['total_s']:.1f} s (peak RSS {gen['peak_rss_mib']:.0f} MiB)."
            if gen is not None
            else " (an existing file)."
        ),
        f"- Each stage ran {args.repeats} times, each in a fresh process; times are medians (min in brackets). "
        "Peak RSS is the process's maximum resident set (imports included).",
        "",
        "| stage | step | time (s) |",
        "| --- | --- | --- |",
    ]
    for key, label in [
        ("load_validate_s", "`load_interactions` (read + validate, duplicates check included)"),
        ("vocab_encode_s", "`build_vocabs` + `encode_interactions`"),
        ("leave_last_out_s", "`leave_last_out(n_test=1)`"),
        ("total_s", "**total**"),
    ]:
        lines.append(f"| hf-recsys | {label} | {_med(pipe, key):.2f} ({min(r[key] for r in pipe):.2f}) |")
    for key, label in [
        ("read_s", "`pq.read_table`"),
        ("group_s", "`group_by('user_id')` with item/timestamp lists"),
        ("total_s", "**total**"),
    ]:
        lines.append(f"| pyarrow alone | {label} | {_med(base, key):.2f} ({min(r[key] for r in base):.2f}) |")
    lines += [
        "",
        "| stage | peak RSS (MiB) | RSS after imports (MiB) |",
        "| --- | --- | --- |",
        f"| hf-recsys | {_med(pipe, 'peak_rss_mib'):.0f} | {_med(pipe, 'rss_after_imports_mib'):.0f} |",
        f"| pyarrow alone | {_med(base, 'peak_rss_mib'):.0f} | {_med(base, 'rss_after_imports_mib'):.0f} |",
        "",
        f"Ratio hf-recsys / pyarrow alone: **{ratio:.2f}x** (medians), {ratio_best:.2f}x (best runs); "
        f"target: within 3x — {'met' if ratio <= 3 else 'NOT met'} on the medians.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
