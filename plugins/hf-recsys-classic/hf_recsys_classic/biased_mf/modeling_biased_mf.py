"""Biased matrix factorisation for rating prediction: ``r_ui = mu + b_u + b_i + p_u . q_i`` (Koren et al., 2009)."""

from __future__ import annotations

import scipy.sparse as sp
import torch
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecommenderOutput, RecPreTrainedModel
from hf_recsys.training.engine import resize_embedding
from hf_recsys.training.examples import TrainingExamples
from torch.nn import functional as F

from .._utils import SGDFactorMixin, padded_rows
from .configuration_biased_mf import BiasedMFConfig


class BiasedMFPreTrainedModel(RecPreTrainedModel):
    config_class = BiasedMFConfig
    base_model_prefix = "biased_mf"
    supports_history = True


class BiasedMFModel(SGDFactorMixin, BiasedMFPreTrainedModel):
    """Explicit-rating matrix factorisation with global, user and item biases, trained on the squared error.

    ``forward(user_ids, item_ids, labels)`` predicts ratings and, with ``labels`` (the true ratings), returns the
    MSE plus L2 loss; :meth:`fit` (the training engine) goes over the training ratings, by per-rating SGD
    (``optimizer="sgd"``, the ``sgd_step`` hook) or autograd and a torch optimiser. ``score_pairs`` gives
    predicted ratings (for RMSE / MAE); recommendations rank items by predicted rating. A user unseen at fit
    time is folded in by one exact ridge solve of the same objective on ``(p_u, b_u)``, the items fixed, with
    each history item counted at ``history_rating``.

    Example:
        ```python
        >>> from hf_recsys_classic import BiasedMFConfig, BiasedMFModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = BiasedMFModel(BiasedMFConfig(factors=8, epochs=5)).fit(tiny_log(), show_progress=False)
        >>> predicted = model.score_pairs(["u1"], [7])
        ```
    """

    def __init__(self, config: BiasedMFConfig):
        super().__init__(config)
        self.user_embeddings = self.item_embeddings = self.user_biases = self.item_biases = None
        self.resize_tables(config.num_users, config.num_items)
        self.register_buffer("global_mean", torch.zeros(()), persistent=True)
        self.register_buffer("rating_range", torch.tensor([1.0, 5.0]), persistent=True)
        self.post_init()

    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: user and item tables for the vocabularies. Known rows are kept; new factors
        start from N(0, ``init_std``) and new biases at 0 (or the mean of the known rows with ``mean_resizing``)."""
        self.config.num_users, self.config.num_items = num_users, num_items
        f, std, zeros = self.config.factors, self.config.init_std, torch.nn.init.zeros_
        normal = lambda t: t.normal_(0.0, std)  # noqa: E731
        self.user_embeddings = resize_embedding(self.user_embeddings, num_users, f, normal, mean_resizing)
        self.item_embeddings = resize_embedding(self.item_embeddings, num_items, f, normal, mean_resizing)
        self.user_biases = resize_embedding(self.user_biases, num_users, 1, zeros, mean_resizing)
        self.item_biases = resize_embedding(self.item_biases, num_items, 1, zeros, mean_resizing)

    def forward(
        self,
        user_ids: torch.LongTensor,
        item_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> RecommenderOutput:
        """Predicted ratings, and the regularised squared error when ``labels`` (ratings) are given.

        Args:
            user_ids: ``(batch,)`` user indices.
            item_ids: ``(batch,)`` item indices; ``None`` predicts every item.
            labels: ``(batch,)`` true ratings.

        Returns:
            :class:`RecommenderOutput` with ``scores`` (predicted ratings, ``(batch,)`` or ``(batch, num_items)``),
            ``loss`` when labels are given, and ``user_embeddings``.
        """
        p, bu = self.user_embeddings(user_ids), self.user_biases(user_ids).squeeze(-1)
        if item_ids is None:
            scores = p @ self.item_embeddings.weight.T + self.item_biases.weight.squeeze(-1) + bu[:, None]
            return RecommenderOutput(scores=scores + self.global_mean, user_embeddings=p)
        q, bi = self.item_embeddings(item_ids), self.item_biases(item_ids).squeeze(-1)
        pred = self.global_mean + bu + bi + (p * q).sum(-1)
        loss = None
        if labels is not None:
            l2 = bu.square() + bi.square() + p.square().sum(-1) + q.square().sum(-1)
            loss = F.mse_loss(pred, labels.to(pred.dtype)) + self.config.regularization * l2.mean()
        return RecommenderOutput(loss=loss, scores=pred, user_embeddings=p)

    def training_examples(
        self, interactions: Interactions, keep_global_mean: bool = False, **kwargs
    ) -> TrainingExamples:
        """One example per rating (``labels`` are the ratings); sets the global mean and rating range the
        predictions use (``keep_global_mean``: keep the fitted mean, widen the range; what ``partial_fit`` does),
        and sizes the tables to the log (``resize_tables``)."""
        inter = interactions.known()
        if inter.rating is None:
            raise ValueError("BiasedMFModel predicts ratings: the training log needs a 'rating' column.")
        self.resize_tables(interactions.num_users, interactions.num_items)
        users, items = torch.tensor(inter.user_idx, dtype=torch.long), torch.tensor(inter.item_idx, dtype=torch.long)
        ratings = torch.tensor(inter.rating, dtype=torch.float32)
        if keep_global_mean:
            low, high = self.rating_range
            self.rating_range = torch.stack([torch.minimum(low, ratings.min()), torch.maximum(high, ratings.max())])
        else:
            self.global_mean = ratings.mean()
            self.rating_range = torch.stack([ratings.min(), ratings.max()])

        def collate(sel: torch.LongTensor, gen: torch.Generator) -> dict:
            sel = sel.cpu()
            return {"user_ids": users[sel], "item_ids": items[sel], "labels": ratings[sel]}

        return TrainingExamples(len(users), collate, unit="rating")

    def _partial_fit(self, interactions: Interactions, seen_before=None, **options) -> None:
        """``partial_fit``: continued training (the engine) relative to the fitted global mean, which stays."""
        from hf_recsys.online import gradient_partial_fit

        gradient_partial_fit(self, interactions, seen_before, keep_global_mean=True, **options)

    @torch.no_grad()
    def sgd_step(self, learning_rate: float, user_ids: torch.Tensor, item_ids: torch.Tensor, labels: torch.Tensor):
        """The engine's SGD hook: one minibatch of per-rating SGD, as Surprise's SVD but vectorised: each rating
        moves its user's and item's biases and factors by ``learning_rate`` times its own gradient
        (``err = r - r_hat``; ``b_u += lr (err - reg b_u)``, ``p_u += lr (err q_i - reg p_u)``, ...); repeated
        rows add up. Returns the batch's mean squared error."""
        lr, reg = learning_rate, self.config.regularization
        p, q = self.user_embeddings.weight, self.item_embeddings.weight
        bu_w, bi_w = self.user_biases.weight, self.item_biases.weight
        pu, qi, bu, bi = p[user_ids], q[item_ids], bu_w[user_ids, 0], bi_w[item_ids, 0]
        err = labels - (self.global_mean + bu + bi + (pu * qi).sum(-1))
        bu_w.index_add_(0, user_ids, (err - reg * bu)[:, None], alpha=lr)
        bi_w.index_add_(0, item_ids, (err - reg * bi)[:, None], alpha=lr)
        e = err[:, None]
        p.index_add_(0, user_ids, torch.addcmul(pu * -reg, e, qi), alpha=lr)
        q.index_add_(0, item_ids, torch.addcmul(qi * -reg, e, pu), alpha=lr)
        return float(err.square().mean())

    def fold_in(self, histories: sp.csr_matrix, ratings: sp.csr_matrix | None = None) -> torch.Tensor:
        """``(p_u, b_u)`` for new users, ``(batch, factors + 1)``: the exact minimiser of the training objective
        over the user's parameters. ``ratings`` (CSR aligned with ``histories``) overrides ``history_rating``."""
        cfg = self.config
        idx, _, mask = padded_rows(histories)
        target = cfg.history_rating if cfg.history_rating is not None else float(self.rating_range[1])
        r = torch.full(idx.shape, target) if ratings is None else padded_rows(ratings)[1]
        q = torch.cat([self.item_embeddings.weight, torch.ones(self.config.num_items, 1)], dim=1).detach().cpu()
        emb = q[idx] * mask.unsqueeze(-1)  # (b, L, f+1)
        resid = (r - float(self.global_mean) - self.item_biases.weight.detach().cpu().squeeze(-1)[idx]) * mask
        n = mask.sum(1).clamp_min(1.0)  # the training loss is a mean: lambda scales with the history length
        a = emb.transpose(1, 2) @ emb + cfg.regularization * n[:, None, None] * torch.eye(cfg.factors + 1)
        b = (emb * resid.unsqueeze(-1)).sum(1)
        return torch.linalg.solve(a, b).to(self.device)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        theta = self.fold_in(histories)
        p, bu = theta[:, :-1], theta[:, -1:]
        return p @ self.item_embeddings.weight.T + self.item_biases.weight.squeeze(-1) + bu + self.global_mean


__all__ = ["BiasedMFModel", "BiasedMFPreTrainedModel"]
