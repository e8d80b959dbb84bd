from .configuration_llm_sequential import LLMSequentialConfig
from .modeling_llm_sequential import LLMSequentialRecommender

__all__ = ["LLMSequentialConfig", "LLMSequentialRecommender"]
