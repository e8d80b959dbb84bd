"""Fixtures of the evaluation tests: a model that returns a fixed score table, and ranx as the reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hf_recsys import IdVocab, RecConfig, RecPreTrainedModel


class ScoreTableModel(RecPreTrainedModel):
    """A test model (not registered) whose scores are a fixed ``(num_users, num_items)`` table."""

    config_class = RecConfig
    trainable = False

    def __init__(self, config: RecConfig):
        super().__init__(config)
        self.table = nn.Parameter(torch.zeros(config.num_users, config.num_items), requires_grad=False)
        self.post_init()

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.table[user_idx]


def table_model(scores: np.ndarray, user_ids, item_ids) -> ScoreTableModel:
    """A fitted-looking model scoring ``scores[u, i]`` for user ``user_ids[u]`` and item ``item_ids[i]``."""
    model = ScoreTableModel(RecConfig(num_users=len(user_ids), num_items=len(item_ids)))
    model.table = nn.Parameter(torch.as_tensor(scores, dtype=torch.float32), requires_grad=False)
    model.set_vocabs(IdVocab(list(user_ids), "user"), IdVocab(list(item_ids), "item"))
    return model


def ranx_per_user(ranked: dict, relevant: dict, metrics: list[str]) -> dict[str, dict]:
    """Per-user ranx scores. ``ranked``: {user: [item, ...] best first}; ``relevant``: {user: [item, ...]}."""
    from ranx import Qrels, Run, evaluate

    run = Run.from_dict(
        {str(u): {str(i): float(len(items) - r) for r, i in enumerate(items)} for u, items in ranked.items()}
    )
    qrels = Qrels.from_dict({str(u): {str(i): 1 for i in items} for u, items in relevant.items()})
    evaluate(qrels, run, metrics, save_results_in_run=True)
    return {m: dict(run.scores[m]) for m in metrics}


def ranx_names(ks) -> list[str]:
    return [f"{m}@{k}" for k in ks for m in ("hit_rate", "precision", "recall", "ndcg", "map", "mrr")]


@pytest.fixture
def make_table_model():
    return table_model


@pytest.fixture
def ranx_reference():
    return ranx_per_user


@pytest.fixture
def metric_names():
    return ranx_names
