"""Pretrained large language models for recommenders: where their weights come from (offline) and the item text
encoder built on them. The LLM model families live in ``hf_recsys.models.llm_sequential`` and
``hf_recsys.models.llm_reranker``."""

from .encoder import encode_item_text_layers, encode_item_texts
from .pretrained import SMOLLM2_GGUF, cache_root, smollm2_path

__all__ = ["SMOLLM2_GGUF", "cache_root", "encode_item_text_layers", "encode_item_texts", "smollm2_path"]
