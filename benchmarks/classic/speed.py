"""Speed, side by side in one run on ml-latest-small (binary implicit feedback, 610 users x 9,724 items, 100,836
interactions): ALS per iteration vs implicit, BPR per epoch vs implicit, ItemKNN fit vs implicit, EASE fit vs the
float64 numpy reference. Same hyper-parameters on both sides; each timing repeated, alternating the two sides, and
the best (min) and median reported. For BPR and ItemKNN the quality of both sides is measured too, so a ratio is
read "at equal NDCG": both fitted on the train part of a per-user temporal 80/20 split of the same log, NDCG@20
over every item, training items masked (implicit's factors are evaluated through a BPRMFModel holding them, with
the same evaluator). Writes ``speed.md`` (or ``speed_<subset>.md``) beside this script.

Run: ``.venv/bin/python benchmarks/classic/speed.py [--repeats 3] [--skip-ease]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
import torch
from _common import HERE, load_average, load_ml1m, load_ratings, machine, markdown_table
from hf_recsys_classic import (
    ALSConfig,
    ALSModel,
    BPRMFConfig,
    BPRMFModel,
    EASEConfig,
    EASEModel,
    ItemKNNConfig,
    ItemKNNModel,
)

from hf_recsys.data.splits import temporal_user_split
from hf_recsys.data.views import build_vocabs, encode_interactions
from hf_recsys.evaluation import evaluate_model
from hf_recsys.training.engine import torch_threads

warnings.filterwarnings("ignore")


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def implicit_fit(model, matrix) -> None:
    """implicit's own advice: OpenBLAS single-threaded while its solvers run their thread pool."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        model.fit(matrix, show_progress=False)


def fitted(model, matrix):
    implicit_fit(model, matrix)
    return model


def with_vocabs(model, users, items):
    model.set_vocabs(users, items)
    return model


def numpy_ease(x: sp.csr_matrix, l2: float) -> np.ndarray:
    """The float64 numpy reference (Steck's code): ``np.linalg.inv``."""
    gram = (x.T @ x).toarray().astype(np.float64)
    gram[np.diag_indices_from(gram)] += l2
    precision = np.linalg.inv(gram)
    weights = precision / (-np.diag(precision))
    weights[np.diag_indices_from(weights)] = 0.0
    return weights


def bpr_as_model(reference, users, items) -> BPRMFModel:
    """implicit's BPR factors (its last column: user 1, item bias) in a BPRMFModel, for the project's evaluator."""
    model = with_vocabs(BPRMFModel(BPRMFConfig(factors=reference.factors)), users, items)
    model.resize_tables(len(users), len(items))
    uf, itf = (
        torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in (reference.user_factors, reference.item_factors)
    )
    with torch.no_grad():
        model.user_embeddings.weight.copy_(uf[:, :-1])
        model.item_embeddings.weight.copy_(itf[:, :-1])
        model.item_biases.weight.copy_(itf[:, -1:])
    return model


def knn_as_model(reference, train, users, items, k: int) -> ItemKNNModel:
    """implicit's pruned item-item similarities (without each item itself) in an ItemKNNModel."""
    sim = reference.similarity.tocsr().astype(np.float32)
    sim.setdiag(0)
    sim.eliminate_zeros()
    model = with_vocabs(ItemKNNModel(ItemKNNConfig(k=k)), users, items)
    idx = torch.zeros(sim.shape[0], k, dtype=torch.long)
    val = torch.zeros(sim.shape[0], k)
    for i in range(sim.shape[0]):
        lo, hi = sim.indptr[i], sim.indptr[i + 1]
        n = min(hi - lo, k)
        order = np.argsort(-sim.data[lo:hi])[:n]
        idx[i, :n] = torch.from_numpy(sim.indices[lo:hi][order].astype(np.int64))
        val[i, :n] = torch.from_numpy(sim.data[lo:hi][order])
    model.neighbor_ids = idx
    model.neighbor_sims = torch.nn.Parameter(val, requires_grad=False)
    model.seen_items = train  # ItemKNN scores a user from their training history
    return model


def quality(log, users, items, ours_factory, ref_fit) -> tuple[float, float]:
    """NDCG@20 of our model and of the reference, both fitted on the same temporal 80/20 train part."""
    split = temporal_user_split(log, test_ratio=0.2)
    train = encode_interactions(split["train"], users, items)
    ours = ours_factory().fit(train, show_progress=False)
    ref = ref_fit(train.to_csr("binary"))
    scores = [
        evaluate_model(m, train, split["test"], ks=(20,), metrics=("ndcg",), show_progress=False)["ndcg@20"]
        for m in (ours, ref)
    ]
    return float(scores[0]), float(scores[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--only", default="als,bpr,knn,ease", help="comma-separated subset of als,bpr,bpr1m,knn,ease (bpr1m: ML-1M)"
    )
    args = parser.parse_args()
    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking
    from implicit.nearest_neighbours import CosineRecommender

    log = load_ratings()
    users, items = build_vocabs(log)
    inter = encode_interactions(log, users, items)
    x = inter.to_csr("binary")
    facts = machine()
    facts["load_before"] = load_average()
    rows, raw = [], {}

    def compare(name, unit, ours_fn, ref_fn, per, target, peer, ndcg=None):
        ours, ref = [], []
        for _ in range(args.repeats):
            ours.append(timed(ours_fn) / per)
            ref.append(timed(ref_fn) / per)
        raw[name] = {"ours": ours, "reference": ref}
        if ndcg is not None:
            raw[name]["ndcg@20"] = {"ours": ndcg[0], "reference": ndcg[1]}
        ratio = min(ours) / min(ref)
        rows.append(
            [
                name,
                unit,
                f"{min(ours):.4f} ({statistics.median(ours):.4f})",
                f"{min(ref):.4f} ({statistics.median(ref):.4f})",
                peer,
                f"{ratio:.2f}x",
                target,
                "yes" if ratio <= float(target.strip("<=x ")) else "no",
                "-" if ndcg is None else f"{ndcg[0]:.4f} / {ndcg[1]:.4f}",
            ]
        )
        print(rows[-1], flush=True)

    iters, conf = 15, x.copy()
    conf.data = 1.0 + 1.0 * conf.data  # implicit's C = alpha * r; ours 1 + alpha * r with alpha = 1
    only = set(args.only.split(","))
    for threads in (None, 1) if "als" in only else ():
        label = "ALS, 64 factors, CG 3 steps, " + ("torch's 2 threads" if threads is None else "1 thread (default)")
        compare(
            label,
            "s / iteration",
            lambda t=threads: with_vocabs(
                ALSModel(ALSConfig(factors=64, regularization=0.05, iterations=iters)), users, items
            ).fit(inter, show_progress=False, num_threads=t),
            lambda: implicit_fit(AlternatingLeastSquares(factors=64, regularization=0.05, iterations=iters), conf),
            iters,
            "<= 1.0x",
            "implicit 0.7.3 ALS",
        )
    epochs = 20

    def bpr(log_, label: str) -> None:
        """Our BPR and implicit's, 20 epochs each, at each side's default threads and at one thread each."""
        users_, items_ = build_vocabs(log_)
        inter_ = encode_interactions(log_, users_, items_)
        x_ = inter_.to_csr("binary")

        def ours(sgd_threads=None):
            config = BPRMFConfig(factors=64, epochs=epochs, sgd_threads=sgd_threads)
            return with_vocabs(BPRMFModel(config), users_, items_)

        compare(
            f"BPR{label}, 64 factors, batch 8192",
            "s / epoch",
            lambda: ours().fit(inter_, show_progress=False),
            lambda: implicit_fit(BayesianPersonalizedRanking(factors=64, iterations=epochs), x_),
            epochs,
            "<= 1.5x",
            "implicit 0.7.3 BPR",
            ndcg=quality(
                log_,
                users_,
                items_,
                ours,
                lambda m: bpr_as_model(
                    fitted(BayesianPersonalizedRanking(factors=64, iterations=epochs, random_state=0), m),
                    users_,
                    items_,
                ),
            ),
        )
        compare(
            f"BPR{label}, 64 factors, batch 8192, 1 thread each",
            "s / epoch",
            lambda: ours(sgd_threads=1).fit(inter_, show_progress=False, num_threads=1),
            lambda: implicit_fit(BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=1), x_),
            epochs,
            "<= 1.5x",
            "implicit 0.7.3 BPR, num_threads=1",
        )

    if "bpr" in only:
        bpr(log, "")
        compare(  # the torch path (no numba, or tables on a GPU): the same update as vectorised tensor operations
            'BPR, 64 factors, batch 8192, 1 thread each, sgd_kernel="torch"',
            "s / epoch",
            lambda: with_vocabs(
                BPRMFModel(BPRMFConfig(factors=64, epochs=epochs, sgd_kernel="torch")), users, items
            ).fit(inter, show_progress=False, num_threads=1),
            lambda: implicit_fit(BayesianPersonalizedRanking(factors=64, iterations=epochs, num_threads=1), x),
            epochs,
            "<= 1.5x",
            "implicit 0.7.3 BPR, num_threads=1",
        )
    if "bpr1m" in only:
        bpr(load_ml1m(), " on ML-1M")
    if "knn" in only:
        compare(
            "ItemKNN cosine, k=100",
            "s / fit",
            lambda: with_vocabs(ItemKNNModel(ItemKNNConfig(k=100)), users, items).fit(inter, show_progress=False),
            lambda: implicit_fit(CosineRecommender(K=101), x),  # its K counts the item itself
            1,
            "<= 1.5x",
            "implicit 0.7.3 CosineRecommender",
            ndcg=quality(
                log,
                users,
                items,
                lambda: with_vocabs(ItemKNNModel(ItemKNNConfig(k=100)), users, items),
                lambda m: knn_as_model(fitted(CosineRecommender(K=101), m), m, users, items, 100),  # K counts the item
            ),
        )
        with torch_threads(1):
            compare(
                "ItemKNN cosine, k=100, 1 thread each",
                "s / fit",
                lambda: with_vocabs(ItemKNNModel(ItemKNNConfig(k=100)), users, items).fit(inter, show_progress=False),
                lambda: implicit_fit(CosineRecommender(K=101, num_threads=1), x),
                1,
                "<= 1.5x",
                "implicit 0.7.3 CosineRecommender, num_threads=1",
            )
    if "ease" in only:
        model = with_vocabs(EASEModel(EASEConfig(l2=500.0)), users, items)
        ours = timed(lambda: model.fit(inter, show_progress=False))
        holder = {}
        ref = timed(lambda: holder.setdefault("b", numpy_ease(x, 500.0)))
        diff = float(np.abs(model.item_weights.numpy() - holder["b"]).max())
        raw["EASE"] = {"ours": [ours], "reference": [ref], "max_abs_diff": diff}
        ratio = ours / ref
        rows.append(
            [
                "EASE, l2=500 (float32 Cholesky + blocked inverse vs float64 inv)",
                "s / fit",
                f"{ours:.2f}",
                f"{ref:.2f}",
                "numpy float64 np.linalg.inv",
                f"{ratio:.2f}x",
                "<= 0.5x",
                "yes" if ratio <= 0.5 else "no",
                "-",
            ]
        )
        print(rows[-1], f"max |B - B_ref| = {diff:.2e}", flush=True)
    facts["load_after"] = load_average()
    header = [
        "what",
        "unit",
        "hf-recsys-classic: best (median)",
        "reference: best (median)",
        "reference",
        "ratio (best/best)",
        "target",
        "met",
        "NDCG@20 ours / reference",
    ]
    text = [
        "# Classic models: speed side by side",
        "",
        f"Run `benchmarks/classic/speed.py --repeats {args.repeats} --only {args.only}` on {facts['date']}.",
        f"Machine: {facts['cpu']}, {facts['cores']} cores **shared with other jobs running at the same time** "
        f"(load average before: {facts['load_before']}, after: {facts['load_after']}); torch {facts['torch']} "
        f"({facts['torch_threads']} threads), implicit {facts['implicit']}, numpy {facts['numpy']}.",
        "Data: ml-latest-small, binary, 610 users x 9,724 items, 100,836 interactions"
        + ("; ML-1M rows: SASRec's ml-1m.txt, 6,040 users x 3,416 items, 999,611 interactions" * ("bpr1m" in only))
        + f". Each side repeated {args.repeats} times, alternating; seconds; best = min over the repeats. "
        f"Commit: {facts['commit']}.",
        "",
        markdown_table(header, rows),
        "",
        "Raw timings (JSON):",
        "",
        "```json",
        json.dumps(raw, indent=1),
        "```",
    ]
    if "EASE" in raw:
        text.insert(-6, f"EASE: max |B - B_numpy| = {raw['EASE']['max_abs_diff']:.2e}.\n")
    name = "speed.md" if only == {"als", "bpr", "knn", "ease"} else f"speed_{'_'.join(sorted(only))}.md"
    (HERE / name).write_text("\n".join(text) + "\n")
    print("\n".join(text))


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
