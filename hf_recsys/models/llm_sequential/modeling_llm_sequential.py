"""An LLM as the sequence backbone of a next-item recommender, in the spirit of E4SRec and LLaRA.

Each item has an id embedding (optionally plus a projection of its text embedding); a linear layer projects it into
the LLM's hidden size and the sequence enters the frozen LLM as ``inputs_embeds`` (no text prompt, no generation).
LoRA adapts the LLM's attention and MLP projections; a linear layer maps its last states back to the item space and
every item is scored by a dot product (full ranking). Training, the recommend contract, histories of cold users,
saving (the adapter in peft's format, the frozen LLM rebuilt from ``base_model``) and ``partial_fit``-style table
growth are those of :class:`~hf_recsys.models.sequential.CausalSequentialRecommender`.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from ...training.engine import autocast_dtype
from ..backbone_utils import eval_mode
from ..sequential.modeling_sequential import CausalSequentialRecommender
from .configuration_llm_sequential import LLMSequentialConfig


class LLMSequentialRecommender(CausalSequentialRecommender):
    """Next-item recommender on a LoRA-adapted causal LLM (SmolLM2, any Llama-like ``AutoModel``).

    Example:
        ```python
        >>> from hf_recsys.models.llm_sequential import LLMSequentialConfig, LLMSequentialRecommender
        >>> from hf_recsys.testing_utils import tiny_log
        >>> cfg = LLMSequentialConfig(max_sequence_length=8, hidden_size=32, num_layers=1, item_embedding_dim=16)
        >>> model = LLMSequentialRecommender(cfg).fit(tiny_log(), epochs=1, show_progress=False)
        >>> ids, scores = model.recommend(["u1"], k=5)
        ```
    """

    config_class = LLMSequentialConfig
    base_model_prefix = "llm_sequential"

    def __init__(self, config: LLMSequentialConfig):
        super().__init__(config)
        self.input_projection = nn.Linear(config.item_embedding_dim, self.llm_hidden_size)
        self.output_projection = nn.Linear(self.llm_hidden_size, config.item_embedding_dim)

    # the parent sizes its item tables (and text projection) with ``hidden_size``, which it sets from the backbone:
    # here the tables live in ``item_embedding_dim`` and the backbone's width is kept as ``llm_hidden_size``
    @property
    def hidden_size(self) -> int:
        return self.config.item_embedding_dim

    @hidden_size.setter
    def hidden_size(self, value: int) -> None:
        self.llm_hidden_size = int(value)

    def encode(self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None, table=None):
        """States ``(b, L, item_embedding_dim)`` of left-padded token sequences: item embeddings projected into the
        LLM, its last hidden states projected back."""
        table = self.item_table() if table is None else table
        if attention_mask is None:
            attention_mask = (input_ids != 0).long()
            attention_mask[:, -1] = 1  # an empty history still yields a finite state
        x = self.input_projection(F.embedding(input_ids, table, padding_idx=0))
        hidden = self.backbone(inputs_embeds=x, attention_mask=attention_mask).last_hidden_state
        return self.output_projection(hidden)

    def _score_tokens(self, tokens: torch.LongTensor, batch_size: int = 64) -> torch.Tensor:
        dtype = autocast_dtype(self.config.precision, self.device)
        amp = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        with eval_mode(self), torch.no_grad(), amp:
            return torch.cat([self(input_ids=t).scores.float() for t in tokens.split(batch_size)])


__all__ = ["LLMSequentialRecommender"]
