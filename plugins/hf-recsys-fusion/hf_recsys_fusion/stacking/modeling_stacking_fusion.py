"""Stacking fusion: a logistic-regression meta-ranker over member scores, ranks, item popularity and user activity,
trained on the members' candidates for a validation split."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..modeling_fusion import FusionBatch, FusionPreTrainedModel, ValidationCache, normalize
from ..rank.modeling_rank_fusion import member_top_lists
from .configuration_stacking_fusion import StackingFusionConfig


class StackingFusion(FusionPreTrainedModel):
    """A learned meta-ranker over the union of the members' top-``top_n`` unseen items.

    Features of a (user, candidate item) pair: for each member, its min-max normalised score (over the user's
    unseen items) and the reciprocal rank ``1 / rank`` in its top-``top_n`` list (0 outside); then
    ``log1p(item popularity)`` (training interactions, divided by its maximum) and ``log1p(user activity)``.
    Features are standardised with statistics of the training candidates; a logistic regression (L-BFGS, L2
    penalty) learns which candidates the user interacts with in the validation split. The fused score is the
    logit; items outside every member's list get ``-inf``. The meta-model lives in the fusion's own safetensors
    (``meta_weights``, ``meta_bias``, ``feature_mean``, ``feature_std``); ``fusion_weights`` is unused.

    Example:
        ```python
        >>> from hf_recsys_fusion import StackingFusion
        >>> fusion = StackingFusion.from_members({"ease": ease, "als": als, "knn": knn})  # doctest: +SKIP
        >>> fusion.tune(validation)  # doctest: +SKIP
        ```
    """

    config_class = StackingFusionConfig

    def __init__(self, config: StackingFusionConfig):
        super().__init__(config)
        f = config.num_features
        self.meta_weights = nn.Parameter(torch.zeros(f, dtype=torch.float64), requires_grad=False)
        self.meta_bias = nn.Parameter(torch.zeros(1, dtype=torch.float64), requires_grad=False)
        self.feature_mean = nn.Parameter(torch.zeros(f, dtype=torch.float64), requires_grad=False)
        self.feature_std = nn.Parameter(torch.ones(f, dtype=torch.float64), requires_grad=False)
        # untrained: equal weight on every member's reciprocal rank, so the model ranks sensibly before tuning
        self.meta_weights.data[1 : 2 * len(config.members) : 2] = 1.0
        self.post_init()

    def _item_popularity(self) -> torch.Tensor:
        counts = np.asarray(self.seen_items.sum(0)).ravel() if self.seen_items is not None else np.zeros(1)
        pop = torch.as_tensor(np.log1p(counts), dtype=torch.float64)
        return pop / pop.max().clamp(min=1e-9)

    def features(self, batch: FusionBatch) -> tuple[list[torch.Tensor], torch.Tensor]:
        """``(features, candidates)``: ``F`` float64 tensors ``(batch, num_items)`` and a bool candidate mask."""
        lists = member_top_lists(batch, self.config.top_n)
        shape = batch.scores[0].shape
        cands = torch.zeros(shape, dtype=torch.bool)
        feats = []
        for j, (top_s, top_i, valid) in enumerate(lists):
            feats.append(normalize(batch.scores[j], batch.eligible(j), "minmax"))
            rr = 1.0 / torch.arange(1, top_s.shape[1] + 1, dtype=torch.float64).expand_as(top_s)
            feats.append(torch.zeros(shape, dtype=torch.float64).scatter_(1, top_i, rr.masked_fill(~valid, 0.0)))
            cands.scatter_(1, top_i, valid | cands.gather(1, top_i))
        feats.append(self._item_popularity()[None, :].expand(shape))
        feats.append(torch.log1p(batch.activity)[:, None].expand(shape))
        return feats, cands

    def fuse(self, batch: FusionBatch) -> torch.Tensor:
        feats, cands = self.features(batch)
        logits = torch.full_like(feats[0], float(self.meta_bias))
        for x, w, mean, std in zip(feats, self.meta_weights, self.feature_mean, self.feature_std):
            logits += (x - mean) * (w / std)
        return logits.masked_fill(~cands, -torch.inf)

    def _tune(self, cache: ValidationCache, metric: str, show_progress: bool = True, **kwargs: Any) -> dict:
        """Train the logistic regression on the validation candidates (label: the user interacts with the item)."""
        xs, ys = [], []
        for batch, rel in zip(cache.batches, cache.relevant):
            feats, cands = self.features(batch)
            xs.append(torch.stack([x[cands] for x in feats], dim=1))
            ys.append(rel[cands].to(torch.float64))
        x, y = torch.cat(xs), torch.cat(ys)
        if y.sum() == 0:
            raise ValueError("StackingFusion.tune: no validation item is among the members' candidates; raise top_n.")
        mean, std = x.mean(0), x.std(0).clamp(min=1e-9)
        z = (x - mean) / std
        w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
        b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], max_iter=self.config.max_iter, line_search_fn="strong_wolfe")

        def closure():
            opt.zero_grad()
            loss = nn.functional.binary_cross_entropy_with_logits(z @ w + b, y) + self.config.l2 * (w @ w)
            loss.backward()
            return loss

        with torch.enable_grad():
            opt.step(closure)
        for p, v in ((self.meta_weights, w), (self.meta_bias, b), (self.feature_mean, mean), (self.feature_std, std)):
            p.data.copy_(v.detach())
        return {
            "candidates": int(len(y)),
            "positives": int(y.sum()),
            "meta_weights": self.meta_weights.tolist(),
            metric: self.validation_metric(cache, metric),
        }


__all__ = ["StackingFusion"]
