"""hf-recsys-fusion: fusion of any registered hf-recsys recommenders (weighted, rank, stacking, switching).

The models register through the ``hf_recsys.models`` entry points of this distribution, so after
``pip install hf-recsys-fusion`` a saved fusion loads with ``AutoModelForRecommendation`` / ``transformers.AutoModel``
(its members load from their sub-folders through the same registry).
"""

from hf_recsys.registry import lazy_exports

# imported on first use: looking up one model type imports that family only
_EXPORTS = {
    "FusionConfig": ".configuration_fusion",
    "ItemContentConfig": ".item_content",
    "ItemContentModel": ".item_content",
    "FusionBatch": ".modeling_fusion",
    "FusionPreTrainedModel": ".modeling_fusion",
    "MemberLoadError": ".modeling_fusion",
    "normalize": ".modeling_fusion",
    "RankFusion": ".rank",
    "RankFusionConfig": ".rank",
    "StackingFusion": ".stacking",
    "StackingFusionConfig": ".stacking",
    "SwitchingFusion": ".switching",
    "SwitchingFusionConfig": ".switching",
    "WeightedFusion": ".weighted",
    "WeightedFusionConfig": ".weighted",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
