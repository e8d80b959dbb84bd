from .configuration_llm_reranker import LLMRerankerConfig
from .modeling_llm_reranker import LLMReranker

__all__ = ["LLMReranker", "LLMRerankerConfig"]
