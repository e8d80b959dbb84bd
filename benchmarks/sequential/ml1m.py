"""ML-1M (SASRec's ml-1m.txt) leave-one-out benchmark of the sequential models, with a plain-PyTorch SASRec reference.

Protocol (the one of the published table in ``../shared/data/README.md``): per user, the last item is test, the
second-last validation, the rest training; every item is ranked, the user's training items excluded (and, for test,
the validation item, which joins the history); HR@10 and NDCG@10 over all 6,040 users. The number of epochs is
chosen on VALIDATION only: validation every ``--eval-every`` epochs, the best validated weights are tested.

    nice -n 10 .venv/bin/python benchmarks/sequential/ml1m.py examples/train/causal_sequential_ml1m.yaml \
        --time-budget 1500 --reference-epochs 1

The model trains with ``fit()`` (the same engine and options as ``hf-recsys train <config>``), with the
``model_config`` of the example config. The reference is a minimal SASRec written here (SASRec+ recipe: last-200
windows, 1 head, dropout 0.1, 64-d ReLU feed-forward, Adam 1e-3, full cross-entropy via ``F.cross_entropy``, fp32),
trained in the same run on the same data for ``--reference-epochs`` epochs, for the ratio of seconds per epoch.
Results go to ``benchmarks/sequential/results/<config name>.json`` and ``.md`` with the machine, load and commit.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml
from torch import nn

HERE = Path(__file__).resolve().parent
PUBLISHED = {  # full ranking on ml-1m.txt (see ../shared/data/README.md)
    "SASRec, BCE (Dross paper)": (0.2500, 0.1341),
    "BERT4Rec (Dross paper)": (0.2843, 0.1537),
    "gSASRec, gBCE (released checkpoint)": (0.3003, 0.1726),
    "SASRec+, full cross-entropy (Dross paper)": (0.3152, 0.1821),
}


def machine() -> dict:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines() if "Model name" in line), "?")
    flags = next((line for line in lscpu.splitlines() if line.startswith("Flags")), "")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True).stdout.strip())
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": "amx_tile" in flags,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "commit": commit + ("+dirty" if dirty else ""),
        "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def ranking_metrics(scores: torch.Tensor, target: np.ndarray) -> tuple[float, float]:
    """HR@10 and NDCG@10 of each row's single target item (scores of masked items at -inf)."""
    t = torch.as_tensor(target)
    rank = (scores > scores.gather(1, t[:, None])).sum(1)  # 0-based rank of the target
    hit = rank < 10
    return float(hit.float().mean()), float(torch.where(hit, 1.0 / torch.log2(rank.float() + 2), 0.0).mean())


def user_sequences(log) -> tuple[np.ndarray, list[np.ndarray]]:
    df = log.to_pandas().sort_values(["user_id", "timestamp"], kind="stable")
    users = df.user_id.to_numpy()
    cuts = np.flatnonzero(np.r_[True, users[1:] != users[:-1], True])
    seqs = [df.item_id.to_numpy()[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    return users[cuts[:-1]], seqs


# ---------------------------------------------------------------------------------------------- the reference
class PlainSASRec(nn.Module):
    """SASRec+ as in the "Dross" paper's code (Klenitskiy & Vasilev 2023, an adaptation of pmixer/SASRec.pytorch).

    Faithful to it: item embeddings scaled by sqrt(d) plus learned positions counted from the first item of the
    (right-padded) window, embedding dropout, pads zeroed after every block; each block: ``Q = LN(x)``,
    ``x = Q + MHA(Q, x, x)`` (causal, dropout on the attention weights), ``x = LN(x)``, ``x = x + FFN(x)``
    (64->64 ReLU, dropout after both layers); a last layer norm; the output is tied to the item embeddings; every
    Linear and Embedding starts from N(0, 0.02), layer norms (eps 1e-8) from (1, 0). One
    difference: the Dross code's softmax also has the pad item's logit (never a label); here only the items'.
    """

    def __init__(self, num_items: int, hidden: int = 64, layers: int = 2, length: int = 200, dropout: float = 0.1):
        super().__init__()
        self.items = nn.Embedding(num_items + 1, hidden, padding_idx=0)
        self.pos = nn.Embedding(length, hidden)
        self.drop = nn.Dropout(dropout)
        self.attn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(layers))
        self.attns = nn.ModuleList(
            nn.MultiheadAttention(hidden, 1, dropout=dropout, batch_first=True) for _ in range(layers)
        )
        self.ffn_norms = nn.ModuleList(nn.LayerNorm(hidden, eps=1e-8) for _ in range(layers))
        self.ffns = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden), nn.Dropout(dropout), nn.ReLU(), nn.Linear(hidden, hidden))
            for _ in range(layers)
        )
        self.last_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.register_buffer("causal", torch.triu(torch.ones(length, length, dtype=torch.bool), 1))
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            module.weight.data.normal_(0.0, 0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.data.zero_()
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                module.weight.data[module.padding_idx].zero_()

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """States ``(b, L, d)`` of right-padded token windows."""
        keep = (tokens > 0).unsqueeze(-1)
        x = self.items(tokens) * self.items.embedding_dim**0.5 + self.pos.weight[None, : tokens.shape[1]]
        x = self.drop(x) * keep
        causal = self.causal[: x.shape[1], : x.shape[1]]
        for norm, attn, fnorm, ffn in zip(self.attn_norms, self.attns, self.ffn_norms, self.ffns):
            q = norm(x)
            x = q + attn(q, x, x, attn_mask=causal, need_weights=False)[0]
            x = fnorm(x)
            x = (x + self.drop(ffn(x))) * keep
        return self.last_norm(x)


def right_pad(seqs: list[np.ndarray], length: int) -> torch.Tensor:
    """The last ``length`` items of each sequence, from position 0, zeros after them."""
    out = np.zeros((len(seqs), length), dtype=np.int64)
    for i, s in enumerate(seqs):
        s = s[-length:]
        out[i, : len(s)] = s
    return torch.as_tensor(out)


def reference_run(train_seqs, val_seqs, val_target, seen, num_items, epochs, batch_size=128, length=200, seed=0):
    """Train the plain SASRec; returns seconds per epoch and validation HR/NDCG@10 after each epoch."""
    torch.manual_seed(seed)
    model = PlainSASRec(num_items, length=length)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    tokens = right_pad(train_seqs, length + 1)  # the last 201 items: 200 inputs, 200 next items
    out = []
    for _ in range(epochs):
        model.train()
        started = time.perf_counter()
        for idx in torch.randperm(len(tokens)).split(batch_size):
            inp, nxt = tokens[idx, :-1], tokens[idx, 1:]
            hidden = model(inp)
            sel = (inp > 0) & (nxt > 0)
            logits = hidden[sel] @ model.items.weight[1:].T
            loss = F.cross_entropy(logits, nxt[sel] - 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - started
        hr, ndcg = reference_eval(model, val_seqs, val_target, seen, length)
        out.append({"seconds": round(seconds, 1), "val_hr@10": round(hr, 4), "val_ndcg@10": round(ndcg, 4)})
        print("reference epoch", out[-1], "load", load_average(), flush=True)
    return out


@torch.no_grad()
def reference_eval(model, seqs, target, seen, length):
    """Validation HR/NDCG@10: the state at each user's last item scores every item."""
    model.eval()
    parts = []
    for start in range(0, len(seqs), 512):
        tokens = right_pad(seqs[start : start + 512], length)
        last = (tokens > 0).sum(1) - 1
        scores = model(tokens)[torch.arange(len(tokens)), last] @ model.items.weight[1:].T
        parts.append(scores)
    scores = torch.cat(parts)
    scores[seen] = -torch.inf
    return ranking_metrics(scores, target - 1)


# ---------------------------------------------------------------------------------------------- ours
def load_data(folder: str, first_users: int | None = None) -> dict:
    """ml-1m.txt split leave-one-out: the log, the splits, per-user training sequences (item ids, time order), the
    validation and test items, the item count and the mask of each user's training items (by item id - 1)."""
    from hf_recsys.data import leave_last_out, load_movielens_1m_sasrec

    log, items = load_movielens_1m_sasrec(folder)
    if first_users:
        log = log.filter(lambda u: u <= first_users, input_columns="user_id")
    splits = leave_last_out(log, n_test=1, n_validation=1)
    users, train_seqs = user_sequences(splits["train"])
    val = splits["validation"].to_pandas().set_index("user_id").loc[users].item_id.to_numpy()
    test = splits["test"].to_pandas().set_index("user_id").loc[users].item_id.to_numpy()
    num_items = int(log.to_pandas().item_id.max())
    assert first_users or (len(users) == 6040 and num_items == 3416), (len(users), num_items)
    seen = torch.zeros(len(users), num_items, dtype=torch.bool)
    for i, s in enumerate(train_seqs):
        seen[i, s - 1] = True
    return {
        "items": items,
        "log": log,
        "splits": splits,
        "users": users,
        "train_seqs": train_seqs,
        "val": val,
        "test": test,
        "num_items": num_items,
        "seen": seen,
    }


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("config", help="an examples/train/*.yaml config (its model_type and model_config are used)")
    p.add_argument("--data", default=str(HERE.parents[1].parent / "shared" / "data" / "ml-1m"))
    p.add_argument("--time-budget", type=float, default=1500, help="stop training after this many seconds")
    p.add_argument("--eval-every", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reference-epochs", type=int, default=1)
    p.add_argument(
        "--reference-first",
        action="store_true",
        help="train the reference before ours (so that it shares the load of jobs started with this one)",
    )
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--users", type=int, default=None, help="only the first N users (a smoke test, not a result)")
    p.add_argument(
        "--text-fusion",
        choices=["none", "add", "init"],
        default="none",
        help="fuse MiniLM embeddings of each movie's title and genres (benchmarks/backbones/common.py, cached)",
    )
    p.add_argument("--tag", default="", help="suffix of the result file names (e.g. a timing-only run)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    from hf_recsys import AutoModelForRecommendation

    cfg = yaml.safe_load(Path(args.config).read_text())
    started_all = time.perf_counter()
    info = {"config": args.config, "machine": machine(), "load_start": load_average(), "argv": sys.argv[1:]}
    d = load_data(args.data, args.users)
    splits, users, train_seqs, val, test, num_items, seen = (
        d["splits"],
        d["users"],
        d["train_seqs"],
        d["val"],
        d["test"],
        d["num_items"],
        d["seen"],
    )
    log = d["log"]

    model_config = dict(cfg.get("model_config") or {})
    if args.max_epochs:
        model_config["epochs"] = args.max_epochs
    torch.manual_seed(int(cfg.get("seed", 0)))
    fit_kwargs = {}
    if args.text_fusion != "none":
        sys.path.insert(0, str(HERE.parent / "backbones"))
        from common import minilm_features

        items = d["items"].to_pandas() if hasattr(d["items"], "to_pandas") else d["items"]
        feats = minilm_features(items["item_id"].tolist(), items["text"].tolist())
        model_config |= {"item_text_dim": feats.shape[1], "text_fusion": args.text_fusion}
        fit_kwargs["item_text_embeddings"] = (items["item_id"].to_numpy(), feats)
    model = AutoModelForRecommendation.for_model(cfg["model_type"], **model_config)
    from hf_recsys.data import build_vocabs

    model.set_vocabs(*build_vocabs(log))  # every item, so ids map to the same columns as `seen`
    item_cols = model.item_vocab.encode(np.arange(1, num_items + 1))
    history = {"epochs": []}
    (HERE / "results").mkdir(exist_ok=True)
    name = Path(args.config).stem + ("" if args.text_fusion == "none" else f"_text_{args.text_fusion}")
    name += ("_smoke" if args.users else "") + (f"_{args.tag}" if args.tag else "")
    partial = HERE / "results" / f"{name}.partial.json"
    best = {"ndcg": -1.0, "state": None, "epoch": 0}
    clock = {"t": time.perf_counter(), "train": 0.0}

    def validate() -> tuple[float, float]:
        scores = model.score_histories(_csr(train_seqs, model, num_items)).float()[:, item_cols]
        scores[seen] = -torch.inf
        return ranking_metrics(scores, val - 1)

    def on_epoch_end(epoch: int, loss: float) -> bool:
        seconds = time.perf_counter() - clock["t"]
        clock["train"] += seconds
        row = {"epoch": epoch + 1, "seconds": round(seconds, 1), "loss": round(loss, 4), "load": load_average()}
        if (epoch + 1) % args.eval_every == 0:
            hr, ndcg = validate()
            row.update({"val_hr@10": round(hr, 4), "val_ndcg@10": round(ndcg, 4)})
            if ndcg > best["ndcg"]:
                best.update(ndcg=ndcg, epoch=epoch + 1, state=copy.deepcopy(model.state_dict()))
        history["epochs"].append(row)
        print(row, flush=True)
        partial.write_text(json.dumps({**info, "history": history}, indent=1, default=str))
        clock["t"] = time.perf_counter()
        return clock["train"] > args.time_budget

    length = int(model_config.get("max_sequence_length", 200))
    ref = None
    if args.reference_epochs and args.reference_first:
        ref = reference_run(train_seqs, train_seqs, val, seen, num_items, args.reference_epochs, length=length)
        clock["t"] = time.perf_counter()  # ours starts now: the reference's time is not ours
    model.fit(splits["train"], show_progress=False, on_epoch_end=on_epoch_end, **fit_kwargs)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    with_val = [np.r_[s, v] for s, v in zip(train_seqs, val)]
    scores = model.score_histories(_csr(with_val, model, num_items)).float()[:, item_cols]
    seen_test = seen.clone()
    seen_test[torch.arange(len(users)), torch.as_tensor(val - 1)] = True
    scores[seen_test] = -torch.inf
    hr, ndcg = ranking_metrics(scores, test - 1)
    epoch_seconds = [r["seconds"] for r in history["epochs"]]
    ours = {
        "model_type": cfg["model_type"],
        "model_config": model_config,
        "epochs_trained": len(epoch_seconds),
        "best_validation_epoch": best["epoch"],
        "best_val_ndcg@10": round(best["ndcg"], 4),
        "seconds_per_epoch_median": round(float(np.median(epoch_seconds)), 1),
        "train_seconds": round(clock["train"], 1),
        "test_hr@10": round(hr, 4),
        "test_ndcg@10": round(ndcg, 4),
        "stopped_by_time_budget": clock["train"] > args.time_budget,
    }
    print("ours", ours, flush=True)
    info.update(ours=ours, history=history)
    if args.reference_epochs:
        if ref is None:
            ref = reference_run(train_seqs, train_seqs, val, seen, num_items, args.reference_epochs, length=length)
        ref_s = float(np.median([r["seconds"] for r in ref]))
        info["reference"] = {"epochs": ref, "seconds_per_epoch_median": ref_s}
        info["epoch_time_ratio_ours_over_reference"] = round(ours["seconds_per_epoch_median"] / ref_s, 3)
        same = [r for r in history["epochs"] if r["epoch"] == len(ref) and "val_ndcg@10" in r]
        if same:
            both = {"ours": same[0]["val_ndcg@10"], "reference": ref[-1]["val_ndcg@10"]}
            info["val_ndcg@10_after_reference_epochs"] = both
    info["load_end"] = load_average()
    info["wall_seconds"] = round(time.perf_counter() - started_all, 1)
    info["published"] = PUBLISHED
    out = HERE / "results"
    (out / f"{name}.json").write_text(json.dumps(info, indent=1, default=str))
    (out / f"{name}.md").write_text(markdown(info, name))
    partial.unlink(missing_ok=True)
    print(json.dumps({k: v for k, v in info.items() if k != "history"}, indent=1, default=str))


def markdown(info: dict, name: str) -> str:
    """The result as a short Markdown page: the run, each epoch, the reference and the published table."""
    o, m = info["ours"], info["machine"]
    lines = [
        f"# {name}: ML-1M leave-one-out, full ranking",
        "",
        f"{m['date_utc']} UTC, commit {m['commit']}, {m['cpu']} ({m['cores']} cores, AVX512-BF16 {m['avx512_bf16']}, "
        f"AMX {m['amx']}), torch {m['torch']}, {m['threads']} threads; load {info['load_start']} at start, "
        f"{info['load_end']} at end (other jobs share the machine). Config `{info['config']}`.",
        "",
        f"- ours ({o['model_type']}): {o['epochs_trained']} epochs in {o['train_seconds']} s of training "
        f"({o['seconds_per_epoch_median']} s/epoch median; stopped by the time budget: "
        f"{o['stopped_by_time_budget']}); best validation epoch {o['best_validation_epoch']} "
        f"(val NDCG@10 {o['best_val_ndcg@10']}); **test HR@10 {o['test_hr@10']}, NDCG@10 {o['test_ndcg@10']}**",
    ]
    if "reference" in info:
        r = info["reference"]
        lines.append(
            f"- reference plain SASRec+ (Dross code), same run: {r['seconds_per_epoch_median']} s/epoch, val NDCG@10 "
            f"per epoch {[e['val_ndcg@10'] for e in r['epochs']]}; ratio of s/epoch ours / reference "
            f"**{info['epoch_time_ratio_ours_over_reference']}**"
        )
    lines += ["", "| epoch | s | loss | val HR@10 | val NDCG@10 | load |", "| --- | --- | --- | --- | --- | --- |"]
    for e in info["history"]["epochs"]:
        lines.append(
            f"| {e['epoch']} | {e['seconds']} | {e['loss']} | {e.get('val_hr@10', '')} | {e.get('val_ndcg@10', '')} "
            f"| {e['load']} |"
        )
    lines += ["", "| published (full ranking) | HR@10 | NDCG@10 |", "| --- | --- | --- |"]
    lines += [f"| {k} | {hr} | {nd} |" for k, (hr, nd) in info["published"].items()]
    return "\n".join(lines) + "\n"


def _csr(seqs, model, num_items):
    import scipy.sparse as sp

    cols = np.concatenate(seqs)
    cols = model.item_vocab.encode(cols)
    indptr = np.r_[0, np.cumsum([len(s) for s in seqs])]
    return sp.csr_matrix((np.ones(len(cols), np.float32), cols, indptr), shape=(len(seqs), num_items))


if __name__ == "__main__":
    main()
