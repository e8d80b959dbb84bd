"""Client of the index Hub test, run in fresh interpreters with ``HF_ENDPOINT`` set to the local test server.

``python index_hub_client.py push OUT``: fit a tiny BPRMF, build an HNSW index, push; ``load OUT`` loads the repo
by id in a new process (empty cache). Both write what the model recommends and which index it holds.
"""

import json
import sys

import numpy as np
import torch

REPO = "test-org/bprmf-hnsw"


def _record(model, log) -> dict:
    users = [str(u) for u in log["user_id"].unique()[:8]]
    ids, scores = model.recommend(users, k=5)
    sims, _ = model.similar_items([7], k=3)
    index = model.item_index
    return {
        "ids": np.asarray(ids).tolist(),
        "scores": scores.tolist(),
        "similar": np.asarray(sims).tolist(),
        "kind": None if index is None else index.main.kind,
        "fingerprint": None if index is None else index.fingerprint,
        "recall": model.config.retrieval_index["recall_at_k"],
    }


def main(action: str, out: str) -> None:
    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.testing_utils import tiny_log

    torch.set_num_threads(1)
    log = tiny_log()
    if action == "push":
        model = AutoModelForRecommendation.for_model("bprmf", factors=8, epochs=3).fit(log, show_progress=False)
        model.build_index("hnsw", M=8)
        model.push_to_hub(REPO)
    else:
        model = AutoModelForRecommendation.from_pretrained(REPO)
    with open(out, "w") as f:
        json.dump(_record(model, log), f)


if __name__ == "__main__":
    main(*sys.argv[1:])
