from .configuration_weighted_fusion import WeightedFusionConfig
from .modeling_weighted_fusion import WeightedFusion, coordinate_ascent

__all__ = ["WeightedFusion", "WeightedFusionConfig", "coordinate_ascent"]
