"""NeuMF: a GMF branch and an MLP branch over user/item embeddings, fused by a linear output layer."""

from __future__ import annotations

import torch
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecommenderOutput, RecPreTrainedModel
from hf_recsys.training.engine import EngineTrainedMixin, resize_embedding
from hf_recsys.training.examples import TrainingExamples
from torch import nn
from torch.nn import functional as F

from .._utils import positive_pairs
from ..bprmf.modeling_bprmf import NegativeSampler
from .configuration_neumf import NeuMFConfig


class NeuMFPreTrainedModel(RecPreTrainedModel):
    config_class = NeuMFConfig
    base_model_prefix = "neumf"

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=0.01)
        elif isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


class NeuMFModel(EngineTrainedMixin, NeuMFPreTrainedModel):
    """Neural collaborative filtering (He et al., WWW 2017): ``logit = w^T [p_u * q_i ; MLP([p'_u ; q'_i])] + b``.

    Trained as a binary classifier of observed pairs against ``num_negatives`` sampled unobserved ones:
    ``forward(user_ids, item_ids, labels)`` returns the binary cross-entropy. Scores are logits. The model has no
    cheap fold-in, so users unseen at fit time are not supported (``supports_history = False``).

    Example:
        ```python
        >>> from hf_recsys_classic import NeuMFConfig, NeuMFModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> config = NeuMFConfig(factors=8, mlp_layers=[16, 8], epochs=3)
        >>> model = NeuMFModel(config).fit(tiny_log(), show_progress=False)
        >>> ids, scores = model.recommend(["u1"], k=3)
        ```
    """

    fit_num_threads = 1  # small tensors: one torch thread is fastest (see SGDFactorMixin)

    def __init__(self, config: NeuMFConfig):
        super().__init__(config)
        widths = config.mlp_layers
        self.gmf_user = self.gmf_item = self.mlp_user = self.mlp_item = None
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.out = nn.Linear(config.factors + widths[-1], 1)
        self.resize_tables(config.num_users, config.num_items)
        self.post_init()

    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: the GMF and MLP user/item embeddings for the vocabularies. Known rows are kept;
        new ones start from N(0, 0.01) (or the mean of the known rows with ``mean_resizing``)."""
        cfg = self.config
        cfg.num_users, cfg.num_items = num_users, num_items
        half = cfg.mlp_layers[0] // 2
        normal = lambda t: t.normal_(0.0, 0.01)  # noqa: E731
        self.gmf_user = resize_embedding(self.gmf_user, num_users, cfg.factors, normal, mean_resizing)
        self.gmf_item = resize_embedding(self.gmf_item, num_items, cfg.factors, normal, mean_resizing)
        self.mlp_user = resize_embedding(self.mlp_user, num_users, half, normal, mean_resizing)
        self.mlp_item = resize_embedding(self.mlp_item, num_items, half, normal, mean_resizing)

    def _tower(self, first: torch.Tensor) -> torch.Tensor:
        """The MLP from the pre-activation of its first layer on."""
        hidden = F.dropout(F.relu(first), self.config.dropout, self.training)
        for layer in self.mlp[1:]:
            hidden = F.dropout(F.relu(layer(hidden)), self.config.dropout, self.training)
        return hidden

    def _logits(self, user_ids: torch.Tensor, item_ids: torch.Tensor) -> torch.Tensor:
        gmf = self.gmf_user(user_ids) * self.gmf_item(item_ids)
        hidden = self._tower(self.mlp[0](torch.cat([self.mlp_user(user_ids), self.mlp_item(item_ids)], dim=-1)))
        return self.out(torch.cat([gmf, hidden], dim=-1)).squeeze(-1)

    def _all_item_logits(self, user_ids: torch.Tensor, max_cells: int = 4_000_000) -> torch.Tensor:
        """Logits of every item for the given users, ``(batch, num_items)``, in user chunks (bounded memory)."""
        half = self.config.mlp_layers[0] // 2
        first = self.mlp[0]
        w_user, w_item = first.weight[:, :half], first.weight[:, half:]
        item_part = self.mlp_item.weight @ w_item.T + first.bias  # (n, h1): the item half of the first layer
        w_gmf, w_mlp = self.out.weight[0, : self.config.factors], self.out.weight[0, self.config.factors :]
        gmf_items = self.gmf_item.weight * w_gmf  # (n, f)
        n = self.config.num_items
        chunk = max(1, max_cells // max(n * item_part.shape[1], 1))
        out = []
        for start in range(0, len(user_ids), chunk):
            u = user_ids[start : start + chunk]
            gmf = self.gmf_user(u) @ gmf_items.T  # (b, n)
            hidden = self._tower((self.mlp_user(u) @ w_user.T)[:, None, :] + item_part[None])  # (b, n, h)
            out.append(gmf + hidden @ w_mlp + self.out.bias)
        return torch.cat(out) if out else torch.zeros(0, n, device=self.device)

    def forward(
        self,
        user_ids: torch.LongTensor,
        item_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> RecommenderOutput:
        """Logits, and the binary cross-entropy when ``labels`` (1 = observed, 0 = sampled negative) are given.

        Args:
            user_ids: ``(batch,)`` user indices.
            item_ids: ``(batch,)`` item indices; ``None`` scores every item.
            labels: ``(batch,)`` 0/1 targets.

        Returns:
            :class:`RecommenderOutput` with ``scores`` (``(batch,)`` or ``(batch, num_items)`` logits) and ``loss``.
        """
        if item_ids is None:
            return RecommenderOutput(scores=self._all_item_logits(user_ids))
        logits = self._logits(user_ids, item_ids)
        loss = None if labels is None else F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return RecommenderOutput(loss=loss, scores=logits)

    def training_examples(self, interactions: Interactions, **kwargs) -> TrainingExamples:
        """One example per positive (user, item) pair; a batch adds ``num_negatives`` sampled negatives per pair
        (label 0) to the pairs (label 1). Sizes the tables to the log (``resize_tables``)."""
        cfg = self.config
        self.resize_tables(interactions.num_users, interactions.num_items)
        users, items, positives = positive_pairs(interactions)
        sampler = NegativeSampler(positives)

        def collate(sel: torch.LongTensor, g: torch.Generator) -> dict:
            sel = sel.cpu()
            u = users[sel].repeat(cfg.num_negatives)
            negs = sampler.sample(u, g)
            labels = torch.cat([torch.ones(len(sel)), torch.zeros(len(negs))])
            batch_items = torch.cat([items[sel], negs])
            return {"user_ids": torch.cat([users[sel], u]), "item_ids": batch_items, "labels": labels}

        return TrainingExamples(len(users), collate, unit="pair")

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self._all_item_logits(user_idx)

    def score_pairs_idx(self, user_idx: torch.LongTensor, item_idx: torch.LongTensor) -> torch.Tensor:
        return self._logits(user_idx, item_idx)

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        emb = F.normalize(self.gmf_item.weight, dim=-1)
        return emb[item_idx] @ emb.T


__all__ = ["NeuMFModel", "NeuMFPreTrainedModel"]
