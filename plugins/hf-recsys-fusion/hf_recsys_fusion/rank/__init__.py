from .configuration_rank_fusion import RANK_METHODS, RankFusionConfig
from .modeling_rank_fusion import RankFusion, member_top_lists

__all__ = ["RANK_METHODS", "RankFusion", "RankFusionConfig", "member_top_lists"]
