"""Does ``masked_sequential`` learn like BERT4Rec? Side by side with a plain BERT4Rec on a slice of ML-1M.

    nice -n 10 .venv/bin/python benchmarks/sequential/masked_check.py --users 2000 --length 50 --epochs 12 plain
    nice -n 10 .venv/bin/python benchmarks/sequential/masked_check.py --users 2000 --length 50 --epochs 12 ours

``plain``: the "Dross" paper's BERT4Rec written out (an item embedding table tied with the output, transformers'
``BertModel`` read through ``inputs_embeds`` — 2 layers of 64, 2 heads, 256-d feed-forward, dropout 0.1 —, right
padding, 20% of the real items masked, cross-entropy over all items at the masked positions only, Adam 1e-3, batch
128; at validation a mask token follows the last ``length - 1`` items). ``ours``: ``masked_sequential`` with the
same recipe through ``fit()`` (``examples/train/masked_sequential_ml1m.yaml`` at this length); ``--model-config``
adds options. Prints the loss and validation HR/NDCG@10 (full ranking, training items excluded) after each epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from ml1m import _csr, load_data, ranking_metrics, right_pad  # noqa: E402


def plain(d: dict, length: int, epochs: int) -> None:
    from transformers import BertConfig, BertModel

    n, seqs = d["num_items"], d["train_seqs"]
    torch.manual_seed(0)
    emb = torch.nn.Embedding(n + 2, 64, padding_idx=0)  # 0 pads, 1..n items, n + 1 masks
    emb.weight.data.normal_(0, 0.02)
    emb.weight.data[0].zero_()
    bert = BertModel(
        BertConfig(
            vocab_size=2,
            max_position_embeddings=200,
            hidden_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=256,
        )
    )
    opt = torch.optim.Adam(list(emb.parameters()) + list(bert.parameters()), lr=1e-3)
    tokens, mask_token = right_pad(seqs, length), n + 1
    for epoch in range(epochs):
        bert.train()
        started = time.perf_counter()
        for idx in torch.randperm(len(tokens)).split(128):
            x = tokens[idx].clone()
            real = x > 0
            masked = (torch.rand(x.shape) < 0.2) & real
            labels = x[masked] - 1
            x[masked] = mask_token
            hidden = bert(inputs_embeds=emb(x), attention_mask=real.float()).last_hidden_state
            loss = F.cross_entropy(hidden[masked] @ emb.weight[1:-1].T, labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - started
        bert.eval()
        with torch.no_grad():
            x = right_pad([s[-(length - 1) :] for s in seqs], length)
            last = (x > 0).sum(1)
            x[torch.arange(len(x)), last] = mask_token
            hidden = bert(inputs_embeds=emb(x), attention_mask=(x > 0).float()).last_hidden_state
            scores = hidden[torch.arange(len(x)), last] @ emb.weight[1:-1].T
            scores[d["seen"]] = -torch.inf
        hr, ndcg = ranking_metrics(scores, d["val"] - 1)
        print(
            json.dumps(
                {
                    "model": "plain",
                    "epoch": epoch + 1,
                    "last_loss": round(loss.item(), 3),
                    "val_hr@10": round(hr, 4),
                    "val_ndcg@10": round(ndcg, 4),
                    "seconds": round(seconds, 1),
                }
            ),
            flush=True,
        )


def ours(d: dict, length: int, epochs: int, extra: dict) -> None:
    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.data import build_vocabs

    cfg = yaml.safe_load((HERE.parents[1] / "examples" / "train" / "masked_sequential_ml1m.yaml").read_text())
    model_config = cfg["model_config"] | {"max_sequence_length": length, "epochs": epochs} | extra
    n, seqs = d["num_items"], d["train_seqs"]
    torch.manual_seed(0)
    model = AutoModelForRecommendation.for_model("masked_sequential", **model_config)
    model.set_vocabs(*build_vocabs(d["log"]))
    cols = model.item_vocab.encode(np.arange(1, n + 1))

    def on_epoch_end(epoch: int, loss: float) -> None:
        scores = model.score_histories(_csr(seqs, model, n)).float()[:, cols]
        scores[d["seen"]] = -torch.inf
        hr, ndcg = ranking_metrics(scores, d["val"] - 1)
        row = {"model": "ours", **extra, "epoch": epoch + 1, "mean_loss": round(loss, 3)}
        print(json.dumps(row | {"val_hr@10": round(hr, 4), "val_ndcg@10": round(ndcg, 4)}), flush=True)

    model.fit(d["splits"]["train"], show_progress=False, on_epoch_end=on_epoch_end)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("which", choices=["plain", "ours"])
    p.add_argument("--data", default=str(HERE.parents[1].parent / "shared" / "data" / "ml-1m"))
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--model-config", default="{}", help="JSON options added to ours")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    d = load_data(args.data, args.users)
    if args.which == "plain":
        plain(d, args.length, args.epochs)
    else:
        ours(d, args.length, args.epochs, json.loads(args.model_config))


if __name__ == "__main__":
    main()
