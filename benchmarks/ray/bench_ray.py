"""Batch scoring of every user: Ray Data ``map_batches`` over model replicas vs the single-process path, users/s.

A synthetic log of ``--users`` users (1M by default) over ``--items`` items, ``--per-user`` interactions each on
average (Zipf-popular items, a Poisson number per user, at least one), EASE fitted on it and saved. Then, in the
same run and on the same saved model and log:

- single process: ``hf-recsys recommend --model M --k 10 --output single.parquet`` (every user of the model, the
  command's own batching), in this process, with ``--threads`` torch threads;
- Ray: ``hf_recsys.integrations.ray.recommend_all(M, log, out, k=10, num_replicas=R)`` on a local
  ``ray.init(num_cpus=R)``, each replica one CPU (one torch thread); timed from the call (actor start-up, model
  loads, scoring and the Parquet write all included), ``ray.init`` timed apart.

Both outputs are compared on a sample of users (same items, same ranks). Results go to ``--out`` with the machine,
the load before and after, the date and the commit.

Usage: ``nice -n 10 python benchmarks/ray/bench_ray.py --out benchmarks/ray/results_1m.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "retrieval"))
from bench_retrieval import machine  # noqa: E402


def synthetic_log(num_users: int, num_items: int, per_user: float, seed: int = 0):
    """A pyarrow table ``user_id, item_id`` (no repeated pair): Zipf item popularity, Poisson activity."""
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    counts = np.maximum(1, rng.poisson(per_user, num_users))
    user = np.repeat(np.arange(1, num_users + 1, dtype=np.int64), counts)
    pop = 1.0 / (np.arange(num_items) + 10.0)
    item = rng.choice(num_items, size=len(user), p=pop / pop.sum()).astype(np.int64) + 1
    pairs = np.unique(user * (num_items + 1) + item)  # drop repeated (user, item) pairs
    return pa.table({"user_id": pairs // (num_items + 1), "item_id": pairs % (num_items + 1)})


def timed(fn, *args, **kwargs) -> float:
    t0 = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - t0


def same_answers(single: Path, ray_out: Path, sample: int, seed: int = 0) -> dict:
    """Compare the two outputs on ``sample`` random users."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pds
    import pyarrow.parquet as pq

    a = pq.read_table(single)
    users = np.random.default_rng(seed).choice(np.unique(a["user_id"].to_numpy()), sample, replace=False)
    b = pds.dataset(str(ray_out)).to_table(filter=pc.field("user_id").isin(users))
    a = a.filter(pc.is_in(a["user_id"], value_set=b["user_id"].unique()))
    a, b = (t.sort_by([("user_id", "ascending"), ("rank", "ascending")]) for t in (a, b))
    return {
        "users_compared": int(len(np.unique(b["user_id"].to_numpy()))),
        "rows": [len(a), len(b)],
        "items_equal": bool(len(a) == len(b) and (a["item_id"].to_numpy() == b["item_id"].to_numpy()).all()),
        "max_score_diff": float(np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max())
        if len(a) == len(b)
        else None,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--users", type=int, default=1_000_000)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--per-user", type=float, default=5.0)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--replicas", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=8192)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the single-process path")
    p.add_argument("--compare-users", type=int, default=2000)
    p.add_argument("--out")
    args = p.parse_args()

    import pyarrow.parquet as pq
    import ray
    import torch

    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.cli import main as cli
    from hf_recsys.integrations.ray import recommend_all

    result = {"machine": machine(), "args": vars(args)}
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        log = synthetic_log(args.users, args.items, args.per_user)
        pq.write_table(log, tmp / "log.parquet")
        model = AutoModelForRecommendation.for_model("ease", l2=100.0).fit(log, show_progress=False)
        model.save_pretrained(tmp / "model")
        n_users = int(model.config.num_users)
        del model
        result["data"] = {
            "users": n_users,
            "items": args.items,
            "interactions": len(log),
            "prepare_seconds": round(time.perf_counter() - t0, 1),
        }
        print(json.dumps(result["data"]), flush=True)

        torch.set_num_threads(args.threads)
        cmd = ["recommend", "--model", str(tmp / "model"), "--k", str(args.k), "--batch-size", str(args.batch_size)]
        single_s = timed(cli, [*cmd, "--output", str(tmp / "single.parquet")])
        result["single_process"] = {
            "threads": args.threads,
            "seconds": round(single_s, 2),
            "users_per_s": round(n_users / single_s, 1),
        }
        print("single", json.dumps(result["single_process"]), flush=True)

        init_s = timed(ray.init, num_cpus=args.replicas, include_dashboard=False, log_to_driver=False)
        ray_s = timed(
            recommend_all,
            tmp / "model",
            tmp / "log.parquet",
            tmp / "ray_out",
            k=args.k,
            num_replicas=args.replicas,
            batch_size=args.batch_size,
        )
        ray.shutdown()
        result["ray"] = {
            "replicas": args.replicas,
            "cpus_per_replica": 1,
            "ray_init_seconds": round(init_s, 2),
            "seconds": round(ray_s, 2),
            "users_per_s": round(n_users / ray_s, 1),
        }
        result["ray_over_single_process"] = round(single_s / ray_s, 3)
        print("ray", json.dumps(result["ray"]), flush=True)
        result["same_answers"] = same_answers(tmp / "single.parquet", tmp / "ray_out", args.compare_users)
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
