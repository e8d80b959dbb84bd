"""hf-recsys-fusion: fusion of any registered hf-recsys recommenders (weighted, rank, stacking, switching).

The models register through the ``hf_recsys.models`` entry points of this distribution, so after
``pip install hf-recsys-fusion`` a saved fusion loads with ``AutoModelForRecommendation`` / ``transformers.AutoModel``
(its members load from their sub-folders through the same registry).
"""

from .configuration_fusion import FusionConfig
from .item_content import ItemContentConfig, ItemContentModel
from .modeling_fusion import FusionBatch, FusionPreTrainedModel, MemberLoadError, normalize
from .rank import RankFusion, RankFusionConfig
from .stacking import StackingFusion, StackingFusionConfig
from .switching import SwitchingFusion, SwitchingFusionConfig
from .weighted import WeightedFusion, WeightedFusionConfig

__version__ = "0.1.0"

__all__ = [
    "FusionBatch",
    "FusionConfig",
    "FusionPreTrainedModel",
    "ItemContentConfig",
    "ItemContentModel",
    "MemberLoadError",
    "RankFusion",
    "RankFusionConfig",
    "StackingFusion",
    "StackingFusionConfig",
    "SwitchingFusion",
    "SwitchingFusionConfig",
    "WeightedFusion",
    "WeightedFusionConfig",
    "normalize",
]
