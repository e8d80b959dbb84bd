"""Fusion vs its members on ml-latest-small (temporal 80/20 split, fusion fitted on a validation split of train).

Protocol:
1. ``temporal_user_split(log, test_ratio=0.2, validation_ratio=0.1)``: per user, the latest 20% of interactions are
   test, the 10% before them validation; the rest is the inner train split. The test split is never used for a
   choice.
2. Members (EASE, ALS, ItemKNN, and a TF-IDF content model) are fitted on the inner train split; a small
   hyper-parameter grid per member is scored on validation NDCG@20.
3. Every fusion (weighted with min-max / z-score / rank normalisation, RRF, CombSUM, CombMNZ, Borda, stacking) is
   tuned on validation NDCG@20 with the members fitted on the inner train split; the best fusion is the one with
   the best validation NDCG@20.
4. Members are refitted on the whole train split (inner train + validation) with the chosen hyper-parameters; the
   fusions keep their tuned weights / meta-model; all are evaluated on test by full ranking (NDCG@20, Recall@20).
5. The best fusion (chosen on validation) is compared with the member that is best *on test* (the harder
   comparison) by a paired t-test / Wilcoxon test over users (``hf_recsys.evaluation.compare``).

Run: ``.venv/bin/python benchmarks/fusion/bench_fusion.py`` (about 10-15 minutes on 2 busy cores); writes
``benchmarks/fusion/results_fusion.md``. Fitted members are cached in ``$HF_RECSYS_FUSION_CACHE``
(default ``/tmp/hf_recsys_fusion_bench``).
"""

from __future__ import annotations

import time
from pathlib import Path

import datasets
from fusion_bench_utils import content_features, fit_member, load_data, machine_line, table
from hf_recsys_fusion import RankFusion, StackingFusion, WeightedFusion

from hf_recsys.data import temporal_user_split
from hf_recsys.evaluation import compare, evaluate_model

OUT = Path(__file__).with_name("results_fusion.md")
METRIC = "ndcg@20"
GRID = {
    "ease": ("ease", [{"l2": 200.0}, {"l2": 500.0}, {"l2": 1500.0}]),
    "als": (
        "als",
        [
            {"factors": 64, "regularization": 0.01, "iterations": 15},
            {"factors": 128, "regularization": 1.0, "iterations": 15},
        ],
    ),
    "item_knn": ("item_knn", [{"k": 50}, {"k": 200}]),
    "content": ("item_content", [{}]),
}
FUSIONS = {
    "weighted (minmax/zscore/rank, tuned)": (WeightedFusion, {}, {"normalizations": ["minmax", "zscore", "rank"]}),
    "RRF (k=60, equal weights)": (RankFusion, {"method": "rrf", "top_n": 100}, None),
    "RRF (k=60, tuned weights)": (RankFusion, {"method": "rrf", "top_n": 100}, {}),
    "CombSUM (min-max, tuned weights)": (RankFusion, {"method": "combsum", "top_n": 100}, {}),
    "CombMNZ (min-max, tuned weights)": (RankFusion, {"method": "combmnz", "top_n": 100}, {}),
    "Borda (equal weights)": (RankFusion, {"method": "borda", "top_n": 100}, None),
    "stacking (logistic regression)": (StackingFusion, {"top_n": 100}, {}),
}


def key(kw: dict) -> str:
    return "_".join(f"{k}{v}" for k, v in kw.items()) or "default"


def main() -> None:
    t0 = time.perf_counter()
    log, items = load_data()
    split = temporal_user_split(log, test_ratio=0.2, validation_ratio=0.1)
    inner, val, test = split["train"], split["validation"], split["test"]
    full = datasets.concatenate_datasets([inner, val])
    ids, feats = content_features(items)
    extra = {"content": {"fit_kwargs": {"item_ids": ids, "item_features": feats}}}
    lines = ["# Fusion benchmark: ml-latest-small, temporal 80/20 split\n", "MACHINE"]
    lines.append(f"Split sizes: inner train {inner.num_rows}, validation {val.num_rows}, test {test.num_rows}.\n")

    # 1-2. members on the inner split, small grid on validation
    chosen, val_rows = {}, []
    for name, (model_type, grid) in GRID.items():
        best = None
        for kw in grid:
            m, sec = fit_member(f"inner_{name}_{key(kw)}", model_type, inner, **kw, **extra.get(name, {}))
            r = evaluate_model(m, inner, val, ks=(20,), show_progress=False)
            val_rows.append({"member": name, "params": kw or "-", "val ndcg@20": r[METRIC], "fit s": round(sec, 1)})
            if best is None or r[METRIC] > best[0]:
                best = (r[METRIC], kw, m)
        chosen[name] = best
    members = {n: b[2] for n, b in chosen.items()}
    lines += [
        "## Member grid (validation NDCG@20, members fitted on the inner train split)\n",
        table(val_rows, ["member", "params", "val ndcg@20", "fit s"]),
        "",
    ]

    # 3. fusions tuned on validation, sharing one cache of member scores
    cache = WeightedFusion.from_members(members).validation_cache(val, show_progress=False)
    fusions, fus_rows = {}, []
    for label, (cls, cfg, tune_kw) in FUSIONS.items():
        start = time.perf_counter()
        f = cls.from_members(members, **cfg)
        info = f.tune(cache, metric=METRIC, show_progress=False, **tune_kw) if tune_kw is not None else {}
        v = f.validation_metric(cache, METRIC)
        fusions[label] = f
        desc = {k: v for k, v in info.items() if k in ("normalization", "weights", "method")}
        fus_rows.append(
            {"fusion": label, "val ndcg@20": v, "tuned": desc or "-", "tune s": round(time.perf_counter() - start, 1)}
        )
    best_label = max(fus_rows, key=lambda r: r["val ndcg@20"])["fusion"]
    lines += [
        "## Fusions tuned on validation (members fitted on the inner train split)\n",
        table(fus_rows, ["fusion", "val ndcg@20", "tuned", "tune s"]),
        "",
        f"Best fusion on validation: **{best_label}**.\n",
    ]

    # 4. refit members on the whole train split, evaluate everything on test
    refit = {}
    for name, (model_type, _) in GRID.items():
        kw = chosen[name][1]
        refit[name], _ = fit_member(f"full_{name}_{key(kw)}", model_type, full, **kw, **extra.get(name, {}))
    results = {f"member: {n}": evaluate_model(m, full, test, ks=(20,), show_progress=False) for n, m in refit.items()}
    for label, f in fusions.items():
        g = type(f).from_members(
            refit,
            **{k: getattr(f.config, k) for k in FUSIONS[label][1]},
            normalization=f.config.normalization,
            weights=f.fusion_weights.tolist(),
        )
        if isinstance(f, StackingFusion):
            g.load_state_dict(f.state_dict())
        results[f"fusion: {label}"] = evaluate_model(g, full, test, ks=(20,), show_progress=False)
    rows = [{"model": k, "test ndcg@20": r["ndcg@20"], "test recall@20": r["recall@20"]} for k, r in results.items()]
    lines += [
        "## Test (members refitted on the whole train split; full ranking over all items, seen masked)\n",
        table(rows, ["model", "test ndcg@20", "test recall@20"]),
        "",
    ]

    # 5. best fusion (chosen on validation) vs the best member on test
    best_member = max((k for k in results if k.startswith("member")), key=lambda k: results[k][METRIC])
    c = compare(results[f"fusion: {best_label}"], results[best_member], METRIC)
    verdict = (
        "beats"
        if c.mean_diff > 0 and c.significant()
        else ("is not significantly different from" if not c.significant() else "is worse than")
    )
    lines += [
        "## Best fusion vs best member (paired over test users)\n",
        f"- best fusion (by validation): {best_label}; best member (by test): {best_member}",
        f"- {c}",
        f"- verdict: the fusion **{verdict}** its best member at alpha 0.05 (paired t-test).\n",
        f"Total wall time: {time.perf_counter() - t0:.0f} s.\n",
    ]
    lines[lines.index("MACHINE")] = f"Machine and date (at the end of the run): {machine_line()}.\n"
    OUT.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
