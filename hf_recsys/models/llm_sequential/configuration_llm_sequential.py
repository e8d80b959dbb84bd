"""Configuration of the LLM-backbone next-item recommender (E4SRec / LLaRA style)."""

from __future__ import annotations

from ...configuration_utils import check_positive
from ..sequential.configuration_sequential import CausalSequentialConfig


class LLMSequentialConfig(CausalSequentialConfig):
    """Configuration of :class:`LLMSequentialRecommender`: a frozen causal LLM, adapted with LoRA, reads the user's
    items as ``inputs_embeds`` and a head scores every item.

    Give the LLM as ``backbone_name_or_path`` (e.g. :func:`hf_recsys.models.llm.smollm2_path`); without one the
    config builds a small randomly initialised Llama (``hidden_size``, ``num_layers``, ``num_heads``) so that the
    config alone builds a model (for tests).

    Args:
        item_embedding_dim: width of the item-id embeddings (and of the optional text projection); a linear layer
            projects them into the LLM's hidden size, another projects the LLM's states back, and an item's score
            is the dot product of the projected state with its embedding.
        use_lora: adapt the frozen LLM with LoRA (default ``True``; ``lora_target_modules`` default to the
            attention and MLP projections of a Llama: ``q/k/v/o_proj``, ``gate/up/down_proj``).
        lora_r, lora_alpha: LoRA rank and scaling (defaults 8 and 16).
        **kwargs: every :class:`~hf_recsys.models.sequential.CausalSequentialConfig` option (``max_sequence_length``,
            ``loss``, ``text_fusion``, training options such as ``precision="bf16"``, which also runs scoring under
            bf16 autocast).

    Example:
        ```python
        >>> from hf_recsys.models.llm_sequential import LLMSequentialConfig
        >>> LLMSequentialConfig(max_sequence_length=10, hidden_size=32).backbone_config["model_type"]
        'llama'
        ```
    """

    model_type = "llm_sequential"

    def __init__(self, item_embedding_dim: int = 64, use_lora: bool = True, **kwargs):
        check_positive(self, "item_embedding_dim", item_embedding_dim)
        self.item_embedding_dim = int(item_embedding_dim)
        kwargs.setdefault("dropout", 0.0)
        super().__init__(use_lora=use_lora, **kwargs)

    def default_backbone_config(self) -> dict:
        heads = self.num_heads
        return {
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": heads,
            "num_key_value_heads": heads,
            "intermediate_size": self.ffn_size or 4 * self.hidden_size,
            "max_position_embeddings": max(self.max_sequence_length, 8),
            "vocab_size": 8,
            "attention_dropout": self.dropout if self.attention_dropout is None else self.attention_dropout,
            "pad_token_id": 0,
            "bos_token_id": None,
            "eos_token_id": None,
            "tie_word_embeddings": False,
        }


__all__ = ["LLMSequentialConfig"]
