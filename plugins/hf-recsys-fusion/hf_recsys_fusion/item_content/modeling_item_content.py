"""Item-content similarity: cosine between an item's feature vector and the mean of the user's history vectors.

A simple content member for cold-start fusion: it knows every item it was given features for, including items with
no interaction in the training log (cold items), so a :class:`~hf_recsys_fusion.SwitchingFusion` can route them here.
The features come from the caller (TF-IDF of genres and titles, sentence embeddings, ...).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import Interactions, _column
from hf_recsys.data.vocab import IdVocab
from hf_recsys.modeling_utils import RecPreTrainedModel
from torch import nn

from .configuration_item_content import ItemContentConfig

logger = logging.getLogger(__name__)


class ItemContentPreTrainedModel(RecPreTrainedModel):
    config_class = ItemContentConfig
    base_model_prefix = "item_content"
    supports_history = True
    trainable = False


class ItemContentModel(ItemContentPreTrainedModel):
    """Scores items by the cosine between their feature vector and the user's profile (the mean of the
    L2-normalised vectors of the items in the user's history).

    ``fit(log, item_ids=ids, item_features=matrix)`` stores the L2-normalised features; the item vocabulary is the
    items of the log plus every item with features, so items never seen in training are scored too. Items of the
    log without features get a zero vector (score 0), counted in a warning.

    Example:
        ```python
        >>> import numpy as np
        >>> from hf_recsys.testing_utils import tiny_log
        >>> from hf_recsys_fusion import ItemContentConfig, ItemContentModel
        >>> ids = np.arange(25) * 10 + 7
        >>> feats = np.eye(2)[np.arange(25) % 2]
        >>> model = ItemContentModel(ItemContentConfig()).fit(tiny_log(), item_ids=ids, item_features=feats)
        >>> model.recommend(["new"], k=2, histories={"new": [7]})[0].shape
        (1, 2)
        ```
    """

    def __init__(self, config: ItemContentConfig):
        super().__init__(config)
        self.item_embeddings = nn.Parameter(torch.zeros(config.num_items, config.embedding_dim), requires_grad=False)
        self.post_init()

    def fit(self, data: Any, user_vocab: IdVocab | None = None, item_vocab: IdVocab | None = None, **kwargs):
        """Fit on a log; ``item_ids`` / ``item_features`` (required) give the feature vector of each item."""
        if kwargs.get("item_ids") is None or kwargs.get("item_features") is None:
            raise ValueError("ItemContentModel.fit needs item_ids=... and item_features=... (one row per item id).")
        ids = kwargs["item_ids"]
        if item_vocab is None and self.item_vocab is None and not isinstance(data, Interactions):
            log_items = _column(data, "item_id")
            both = pa.concat_arrays([log_items, pa.array(np.asarray(ids)).cast(log_items.type)])
            item_vocab = IdVocab.from_values(both, "item")
        elif item_vocab is not None:
            item_vocab = item_vocab.extend(np.asarray(ids))
        return super().fit(data, user_vocab=user_vocab, item_vocab=item_vocab, **kwargs)

    def _fit(self, interactions: Interactions, item_ids: Any = None, item_features: Any = None, **kwargs) -> None:
        feats = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
        if feats.ndim != 2 or feats.shape[0] != len(item_ids):
            raise ValueError(
                f"item_features must be (len(item_ids), dim), got {tuple(feats.shape)} for {len(item_ids)} ids."
            )
        pos = self.item_vocab.encode(np.asarray(item_ids), unknown="mask")
        emb = torch.zeros(self.config.num_items, feats.shape[1])
        keep = pos >= 0
        emb[torch.as_tensor(pos[keep])] = torch.nn.functional.normalize(feats[torch.as_tensor(keep)], dim=1)
        missing = self.config.num_items - int(unique(pos[keep]).size)
        if missing:
            logger.warning("ItemContentModel: %d item(s) have no features; they score 0.", missing)
        self.config.embedding_dim = int(feats.shape[1])
        self.item_embeddings = nn.Parameter(emb, requires_grad=False)

    def _partial_fit(
        self,
        interactions: Interactions,
        seen_before=None,
        item_ids: Any = None,
        item_features: Any = None,
        show_progress: bool = False,
    ) -> None:
        """``partial_fit``: the item table grows (new items score 0 until they get features, counted in a warning);
        ``item_ids`` / ``item_features`` set (or replace) the features of those items. Profiles are read from the
        seen items, which already hold the new interactions."""
        old = self.item_embeddings.detach()
        emb = torch.zeros(self.config.num_items, old.shape[1])
        emb[: len(old)] = old
        if item_ids is not None or item_features is not None:
            feats = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
            if item_ids is None or feats.ndim != 2 or feats.shape != (len(item_ids), old.shape[1]):
                raise ValueError(
                    f"partial_fit needs item_ids and item_features of shape (len(item_ids), {old.shape[1]}), got "
                    f"{tuple(feats.shape)} for {None if item_ids is None else len(item_ids)} ids."
                )
            pos = self.item_vocab.encode(np.asarray(item_ids), unknown="mask")
            keep = pos >= 0
            emb[torch.as_tensor(pos[keep])] = torch.nn.functional.normalize(feats[torch.as_tensor(keep)], dim=1)
        missing = int((emb.abs().sum(1) == 0).sum())
        if missing:
            logger.warning("ItemContentModel: %d item(s) have no features; they score 0.", missing)
        self.item_embeddings = nn.Parameter(emb, requires_grad=False)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        hist = histories.tocsr().astype(np.float32)
        hist.data[:] = 1.0
        emb = self.item_embeddings.detach().cpu()
        profile = torch.nn.functional.normalize(torch.as_tensor(hist @ emb.numpy()), dim=1)
        return (profile @ emb.T).to(self.device)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        if self.seen_items is None:
            raise RuntimeError("ItemContentModel scores users from their training histories: fit it first.")
        return self.score_histories(self.seen_items[user_idx.cpu().numpy()])

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        e = self.item_embeddings.detach()
        return e[item_idx] @ e.T


__all__ = ["ItemContentModel", "ItemContentPreTrainedModel"]
