from .configuration_two_tower import TwoTowerConfig
from .modeling_two_tower import TwoTowerModel, TwoTowerPreTrainedModel

__all__ = ["TwoTowerConfig", "TwoTowerModel", "TwoTowerPreTrainedModel"]
