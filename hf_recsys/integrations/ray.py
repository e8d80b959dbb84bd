"""Batch scoring on Ray Data: every user of a Parquet log, top-k by model replicas (``pip install "hf-recsys[ray]"``).

``recommend_all(model, log, output)`` reads the log's ``user_id`` column, keeps each user once (in order of first
appearance), and runs ``Dataset.map_batches`` over a pool of actors, each holding one copy of the model (CPU
actors here; ``num_gpus_per_replica=1`` puts each on a GPU where there is one). The output is a folder of Parquet
files with ``user_id, item_id, rank, score``: the rows ``hf-recsys recommend`` writes for the same users.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..data.arrays import unique


def _import_ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('Batch scoring on Ray needs Ray Data: pip install "hf-recsys[ray]".') from exc
    return ray


class _Scorer:
    """One model replica: loads the model once per actor and scores batches of users."""

    def __init__(
        self, model_path: str, k: int, exclude_seen: bool, revision: str | None, threads: int, gpu: bool = False
    ):
        import torch

        from ..hub import load_model

        torch.set_num_threads(threads)
        self.model = load_model(model_path, **({"revision": revision} if revision else {}))
        if gpu:  # a GPU actor: Ray set CUDA_VISIBLE_DEVICES to its GPU; score there, not on the CPU
            if not torch.cuda.is_available():
                raise RuntimeError("num_gpus_per_replica > 0, but torch sees no CUDA device in the Ray actor.")
            self.model.to("cuda")
        self.k, self.exclude_seen = k, exclude_seen

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        users = batch["user_id"]
        ids, scores = self.model.recommend(list(users), k=self.k, exclude_seen=self.exclude_seen)
        k = ids.shape[1]
        return {
            "user_id": np.repeat(users, k),
            "item_id": np.asarray(ids).reshape(-1),
            "rank": np.tile(np.arange(1, k + 1, dtype=np.int32), len(users)),
            "score": scores.reshape(-1).astype(np.float32),
        }


def recommend_all(
    model_path: str | os.PathLike,
    log: str | os.PathLike,
    output: str | os.PathLike,
    k: int = 10,
    exclude_seen: bool = True,
    num_replicas: int = 2,
    batch_size: int = 4096,
    num_cpus_per_replica: float = 1,
    num_gpus_per_replica: float = 0,
    revision: str | None = None,
    user_column: str = "user_id",
) -> Any:
    """Top-``k`` for every user of a Parquet interaction log, scored by ``num_replicas`` Ray actors.

    Args:
        model_path: saved model folder or Hub repo id (each actor loads it).
        log: Parquet file or folder with a ``user_id`` column (the users to score).
        output: folder for the Parquet output (``user_id, item_id, rank, score``).
        k, exclude_seen: as in ``model.recommend``.
        num_replicas: actors, each holding one model copy.
        batch_size: users per ``map_batches`` batch.
        num_cpus_per_replica, num_gpus_per_replica: resources of each actor.
        revision: Hub revision.
        user_column: the log's user column.

    Returns:
        The Ray ``Dataset`` of the output (already written).
    """
    ray = _import_ray()
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if not ray.is_initialized():
        ray.init()
    users = pq.read_table(log, columns=[user_column]).column(user_column)
    first = np.sort(unique(pc.index_in(users, pc.unique(users)).to_numpy(), return_index=True)[1])
    users = pc.take(users, pa.array(first))  # each user once, in order of first appearance
    table = pa.table({"user_id": users})
    blocks = max(int(num_replicas), -(-len(table) // int(batch_size)))  # at least one block per replica
    step = -(-len(table) // blocks)
    ds = ray.data.from_arrow([table.slice(i, step) for i in range(0, len(table), step)])
    out = ds.map_batches(
        _Scorer,
        fn_constructor_args=(
            str(model_path),
            int(k),
            bool(exclude_seen),
            revision,
            max(1, int(num_cpus_per_replica)),
            num_gpus_per_replica > 0,
        ),
        batch_size=batch_size,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=int(num_replicas)),  # `concurrency=` is deprecated in Ray 2.51+
        num_cpus=num_cpus_per_replica,
        num_gpus=num_gpus_per_replica,
    )
    out.write_parquet(str(output))
    return out


__all__ = ["recommend_all"]
