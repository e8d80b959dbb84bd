"""Configuration of the two-tower retrieval model with a pretrained content (text or image) item tower."""

from __future__ import annotations

from typing import ClassVar

from ...configuration_utils import check_choice, check_positive
from ...training.engine import set_training_options
from ..backbone_utils import BackboneRecConfig

#: the training options of the two-tower model (see :class:`~hf_recsys.training.TrainingOptions`)
TWO_TOWER_TRAINING_DEFAULTS = {
    "epochs": 5,
    "batch_size": 256,
    "learning_rate": 1e-3,
    "optimizer": "adamw",
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "seed": 0,
    "precision": "fp32",
}


class TwoTowerConfig(BackboneRecConfig):
    """Configuration of :class:`TwoTowerModel`.

    Args:
        modality: ``"text"`` (BERT-like backbone over item text) or ``"image"`` (ViT-like backbone over item
            images).
        embedding_dim: size of the shared user/item space the towers project into.
        pooling: ``"mean"`` (mean of the backbone's token states, masked) or ``"cls"`` (the first token).
        max_text_length: tokens kept per item text.
        tokenizer_name_or_path: tokenizer for item texts; by default ``backbone_name_or_path``.
        user_tower: ``"id"`` (mean of learned embeddings of the user's history items) or ``"content"`` (mean of
            the item tower's own embeddings of the history items; needs a frozen backbone without LoRA).
        use_user_id_embedding: add a learned per-user embedding to the user tower (known users only).
        similarity: ``"cosine"`` or ``"dot"``.
        softmax_temperature: logits are divided by it.
        loss: ``"softmax"`` (in-batch sampled softmax) or ``"bpr"`` (in-batch BPR).
        logq_correction: subtract the log popularity of in-batch negatives from their logits.
        epochs, batch_size, learning_rate, optimizer, weight_decay, max_grad_norm, seed, precision: training options
            of ``fit`` and ``hf-recsys train`` (see :class:`~hf_recsys.training.TrainingOptions`; batches are
            interactions).
        **kwargs: backbone, LoRA and :class:`RecConfig` options (see :class:`BackboneRecConfig`).

    Example:
        ```python
        >>> from hf_recsys.models.two_tower import TwoTowerConfig
        >>> cfg = TwoTowerConfig(backbone_name_or_path="sentence-transformers/all-MiniLM-L6-v2", use_lora=True)
        >>> cfg.base_model
        'sentence-transformers/all-MiniLM-L6-v2'
        ```
    """

    model_type = "two_tower"
    training_defaults: ClassVar[dict] = TWO_TOWER_TRAINING_DEFAULTS  # options taken from **kwargs

    def __init__(
        self,
        modality: str = "text",
        embedding_dim: int = 64,
        pooling: str = "mean",
        max_text_length: int = 64,
        tokenizer_name_or_path: str | None = None,
        user_tower: str = "id",
        use_user_id_embedding: bool = False,
        similarity: str = "cosine",
        softmax_temperature: float = 0.05,
        loss: str = "softmax",
        logq_correction: bool = True,
        **kwargs,
    ):
        set_training_options(self, TWO_TOWER_TRAINING_DEFAULTS, kwargs)
        check_choice(self, "modality", modality, ("text", "image"))
        check_choice(self, "pooling", pooling, ("mean", "cls"))
        check_choice(self, "user_tower", user_tower, ("id", "content"))
        check_choice(self, "similarity", similarity, ("cosine", "dot"))
        check_choice(self, "loss", loss, ("softmax", "bpr"))
        for name, value in (
            ("embedding_dim", embedding_dim),
            ("max_text_length", max_text_length),
            ("softmax_temperature", softmax_temperature),
        ):
            check_positive(self, name, value)
        self.modality, self.embedding_dim, self.pooling = modality, int(embedding_dim), pooling
        self.max_text_length, self.tokenizer_name_or_path = int(max_text_length), tokenizer_name_or_path
        self.user_tower, self.use_user_id_embedding = user_tower, bool(use_user_id_embedding)
        self.similarity, self.softmax_temperature = similarity, float(softmax_temperature)
        self.loss, self.logq_correction = loss, bool(logq_correction)
        super().__init__(**kwargs)
        if self.user_tower == "content" and (self.use_lora or not self.freeze_backbone):
            raise ValueError(
                "TwoTowerConfig: user_tower='content' needs freeze_backbone=True and use_lora=False "
                "(history items are encoded from cached backbone features)."
            )


__all__ = ["TwoTowerConfig"]
