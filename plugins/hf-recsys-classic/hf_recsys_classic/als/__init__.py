from .configuration_als import ALSConfig
from .modeling_als import ALSModel, ALSPreTrainedModel

__all__ = ["ALSConfig", "ALSModel", "ALSPreTrainedModel"]
