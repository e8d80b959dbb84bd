"""ANN retrieval against exact scoring and against raw faiss / implicit, on a synthetic catalogue.

A catalogue of ``--items`` x ``--dim`` item vectors and ``--queries`` users (a mixture of 1,024 Gaussian clusters,
item norms log-normal, so inner products differ from cosine) goes into an ALS model (``user_factors`` /
``item_factors`` set directly). For each index kind and parameter set it measures, in the same run:

- build time of ``model.build_index`` (library) and of the same faiss index built directly;
- memory: the serialized index size;
- QPS of ``model.recommend(users, k=10, exclude_seen=False)`` through the index (library: id decoding, exact
  re-scoring, refill checks included) and of ``index.search`` on the same query vectors (raw faiss), and their
  ratio; also the library with ``exclude_seen=True`` (20 seen items per user);
- recall@10 against exact top-10 (torch matmul + topk over every item, the baseline, whose QPS is measured too);
- implicit's ``FaissModel`` (IVF-Flat, inner product) at the same ``nlist`` / ``nprobe``, where it imports.

Usage (from the repository root):
``OMP_WAIT_POLICY=PASSIVE nice -n 15 python benchmarks/retrieval/bench_retrieval.py --items 200000 --out FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import time

import numpy as np
import scipy.sparse as sp
import torch


def catalogue(n_items: int, n_queries: int, dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(1024, dim)).astype(np.float32)
    items = centres[rng.integers(0, 1024, n_items)] + 0.8 * rng.normal(size=(n_items, dim)).astype(np.float32)
    items *= rng.lognormal(0.0, 0.3, size=(n_items, 1)).astype(np.float32) / np.sqrt(dim)
    users = centres[rng.integers(0, 1024, n_queries)] + 0.8 * rng.normal(size=(n_queries, dim)).astype(np.float32)
    return np.ascontiguousarray(items), np.ascontiguousarray(users / np.sqrt(dim), dtype=np.float32)


def make_model(items: np.ndarray, users: np.ndarray, seen_per_user: int, seed: int = 0):
    from hf_recsys_classic import ALSConfig, ALSModel

    from hf_recsys import IdVocab

    n_users, n_items = len(users), len(items)
    model = ALSModel(ALSConfig(factors=items.shape[1], num_users=n_users, num_items=n_items))
    model.user_factors = torch.nn.Parameter(torch.from_numpy(users), requires_grad=False)
    model.item_factors = torch.nn.Parameter(torch.from_numpy(items), requires_grad=False)
    model.set_vocabs(IdVocab(np.arange(n_users)), IdVocab(np.arange(n_items)))
    rng = np.random.default_rng(seed)
    cols = rng.integers(0, n_items, n_users * seen_per_user)
    rows = np.repeat(np.arange(n_users), seen_per_user)
    model.seen_items = sp.csr_matrix((np.ones(len(cols), np.float32), (rows, cols)), shape=(n_users, n_items))
    return model


def exact_topk(users: np.ndarray, items: np.ndarray, k: int) -> tuple[np.ndarray, float]:
    """Exact top-k in torch (the baseline: matmul + topk, 2^26 scores per batch) and its QPS."""
    it, out = torch.from_numpy(items), []
    batch = max(16, (1 << 26) // len(items))
    t0 = time.perf_counter()
    for s in range(0, len(users), batch):
        out.append(torch.topk(torch.from_numpy(users[s : s + batch]) @ it.T, k, dim=1).indices.numpy())
    return np.concatenate(out), len(users) / (time.perf_counter() - t0)


def recall(got: np.ndarray, truth: np.ndarray) -> float:
    k = truth.shape[1]
    return float(np.mean([len(set(a[:k]) & set(b)) / k for a, b in zip(got, truth)]))


def raw_faiss(kind: str, items: np.ndarray, params: dict):
    """The same index, built with faiss directly (the L2 reduction done here by hand where asked)."""
    import faiss

    if params.get("mips") == "augment":
        norms = (items.astype(np.float64) ** 2).sum(1)
        extra = np.sqrt(norms.max() - norms).astype(np.float32)[:, None]
        items = np.ascontiguousarray(np.concatenate([items, extra], axis=1))
    d = items.shape[1]
    metric = faiss.METRIC_L2 if params.get("mips") == "augment" else faiss.METRIC_INNER_PRODUCT
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, params["M"], metric)
        index.hnsw.efConstruction = params["ef_construction"]
    elif kind == "ivf_flat":
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, params["nlist"], metric)
    else:
        index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, params["nlist"], params["pq_m"], params["pq_bits"], metric)
    if kind.startswith("ivf"):
        index.train(items)
    index.add(items)
    return index


def raw_search(index, kind: str, params: dict, queries: np.ndarray, k: int) -> np.ndarray:
    if kind == "hnsw":
        index.hnsw.efSearch = params["ef_search"]
    elif kind.startswith("ivf"):
        index.nprobe = params["nprobe"]
    if params.get("mips") == "augment":
        queries = np.ascontiguousarray(np.pad(queries, ((0, 0), (0, 1))))
    return index.search(queries, k)[1]


def implicit_peer(model, items: np.ndarray, users: np.ndarray, params: dict, k: int, truth: np.ndarray) -> dict:
    """implicit's FaissModel (IVF-Flat, inner product) at the same nlist / nprobe, over the same factors."""
    try:
        from implicit.ann.faiss import FaissModel
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError as exc:
        return {"error": str(exc)}
    als = AlternatingLeastSquares(factors=items.shape[1])
    als.item_factors, als.user_factors = items, users
    als.fit = lambda *a, **kw: None  # the factors are given: only the index is built
    ann = FaissModel(als, nlist=params["nlist"], nprobe=params["nprobe"])
    ann.approximate_similar_items = False
    t0 = time.perf_counter()
    ann.fit(sp.csr_matrix((len(users), len(items)), dtype=np.float32), show_progress=False)
    build = time.perf_counter() - t0
    empty = sp.csr_matrix((len(users), len(items)), dtype=np.float32)
    t0 = time.perf_counter()
    ids, _ = ann.recommend(np.arange(len(users)), empty, N=k, filter_already_liked_items=False)
    qps = len(users) / (time.perf_counter() - t0)
    return {"build_s": round(build, 2), "qps": round(qps, 1), "recall_at_10": round(recall(ids, truth), 4)}


def run(args) -> dict:
    import faiss

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    items, users = catalogue(args.items, args.queries, args.dim)
    model = make_model(items, users, seen_per_user=20)
    q_users = np.arange(min(args.qps_queries, args.queries))
    truth, exact_qps = exact_topk(users[q_users], items, args.k)
    exact_qps = max(exact_qps, exact_topk(users[q_users], items, args.k)[1])  # best of two, as below
    t0 = time.perf_counter()
    model.recommend(q_users[:2048], k=args.k, exclude_seen=False)
    lib_exact_qps = min(2048, len(q_users)) / (time.perf_counter() - t0)
    rows = []
    qv = np.ascontiguousarray(users[q_users])
    for kind, build, sweep in args.grid:
        if args.kinds and kind not in args.kinds:
            continue
        t0 = time.perf_counter()
        model.build_index(kind, recall_users=256, similar_items=False, **build)
        lib_build = time.perf_counter() - t0
        index = model.item_index.main
        t0 = time.perf_counter()
        raw = raw_faiss(kind, items, index.params) if args.peer else None
        raw_build = time.perf_counter() - t0
        if kind == "hnsw" and args.hnsw_ef:
            sweep = [{"ef_search": ef} for ef in args.hnsw_ef]
        for search in sweep or [{}]:
            info = model.tune_index(**search) if search else model.config.retrieval_index
            raw_qps = lib_qps = 0.0
            for _ in range(args.repeats):  # alternated, best of each: the machine's load varies over seconds
                if raw is not None:
                    t0 = time.perf_counter()
                    raw_ids = raw_search(raw, kind, index.params, qv, args.k)
                    raw_qps = max(raw_qps, len(qv) / (time.perf_counter() - t0))
                t0 = time.perf_counter()
                lib_ids, _ = model.recommend(q_users, k=args.k, exclude_seen=False, batch_size=1024)
                lib_qps = max(lib_qps, len(qv) / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            model.recommend(q_users, k=args.k, exclude_seen=True, batch_size=1024)
            lib_seen_qps = len(qv) / (time.perf_counter() - t0)
            row = {
                "kind": kind,
                "params": dict(index.params),
                "build_s_library": round(lib_build, 2),
                "build_s_faiss": round(raw_build, 2),
                "index_mb": round(index.memory_bytes() / 2**20, 1),
                "recall_at_10_library": round(recall(np.asarray(lib_ids), truth), 4),
                "recall_at_10_faiss": round(recall(raw_ids, truth), 4) if raw is not None else None,
                "recall_at_10_stored": info["recall_at_k"],
                "qps_library": round(lib_qps, 1),
                "qps_faiss": round(raw_qps, 1),
                "faiss_over_library": round(raw_qps / lib_qps, 3) if raw is not None else None,
                "qps_library_exclude_seen": round(lib_seen_qps, 1),
                "speedup_vs_exact_torch": round(lib_qps / exact_qps, 1),
            }
            if kind == "ivf_flat" and args.implicit and args.peer:
                row["implicit_faiss_model"] = implicit_peer(model, items, qv, index.params, args.k, truth)
            print(json.dumps(row), flush=True)
            rows.append(row)
        model.drop_index()
        del raw
    return {"exact_torch_qps": round(exact_qps, 1), "exact_library_qps": round(lib_exact_qps, 1), "rows": rows}


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    name = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {
        "cpu": name,
        "cores": os.cpu_count(),
        "memory_gib": round(mem, 1),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "commit": commit,
    }


GRID = [  # (kind, build parameters, search parameters swept on the built index)
    ("exact", {}, None),
    ("hnsw", {"M": 32, "ef_construction": 100}, [{"ef_search": 32}, {"ef_search": 64}, {"ef_search": 128}]),
    ("hnsw", {"M": 32, "ef_construction": 100, "mips": "augment"}, [{"ef_search": 64}, {"ef_search": 128}]),
    ("ivf_flat", {}, [{"nprobe": 8}, {"nprobe": 32}, {"nprobe": 128}]),
    ("ivf_pq", {"pq_m": 16}, [{"nprobe": 32}]),
]


GRID_LARGE = [  # the 1M-item run: no L2-reduction or PQ rows (the 200k run has them), to fit the time
    ("exact", {}, None),
    ("hnsw", {"M": 32, "ef_construction": 100}, [{"ef_search": 32}, {"ef_search": 64}, {"ef_search": 128}]),
    ("ivf_flat", {}, [{"nprobe": 32}, {"nprobe": 128}]),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--queries", type=int, default=100_000)
    p.add_argument("--qps-queries", type=int, default=5_000, help="queries timed (and scored exactly for recall)")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-implicit", dest="implicit", action="store_false")
    p.add_argument("--kinds", nargs="*", help="only these index kinds (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs of each search (best kept)")
    p.add_argument("--large-grid", action="store_true", help="the reduced grid of the 1M-item run")
    p.add_argument("--hnsw-ef", type=int, nargs="*", help="ef_search values swept on the HNSW index instead")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="skip the raw faiss / implicit peers")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    args.grid = GRID_LARGE if args.large_grid else GRID
    result = {"machine": machine(), "args": {k: v for k, v in vars(args).items() if k != "grid"}}
    result.update(run(args))
    result["machine"]["load_average_at_end"] = os.getloadavg()
    text = json.dumps(result, indent=1)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
