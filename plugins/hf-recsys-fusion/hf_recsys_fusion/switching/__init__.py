from .configuration_switching_fusion import SwitchingFusionConfig
from .modeling_switching_fusion import SwitchingFusion

__all__ = ["SwitchingFusion", "SwitchingFusionConfig"]
