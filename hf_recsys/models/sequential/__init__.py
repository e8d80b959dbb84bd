from .configuration_sequential import CausalSequentialConfig, MaskedSequentialConfig, SequentialConfig
from .modeling_sequential import CausalSequentialRecommender, MaskedSequentialRecommender, SequentialRecPreTrainedModel

__all__ = [
    "CausalSequentialConfig",
    "CausalSequentialRecommender",
    "MaskedSequentialConfig",
    "MaskedSequentialRecommender",
    "SequentialConfig",
    "SequentialRecPreTrainedModel",
]
