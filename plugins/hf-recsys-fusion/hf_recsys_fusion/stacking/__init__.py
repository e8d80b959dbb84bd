from .configuration_stacking_fusion import StackingFusionConfig
from .modeling_stacking_fusion import StackingFusion

__all__ = ["StackingFusion", "StackingFusionConfig"]
