from .configuration_ease import EASEConfig
from .modeling_ease import EASEModel, EASEPreTrainedModel

__all__ = ["EASEConfig", "EASEModel", "EASEPreTrainedModel"]
