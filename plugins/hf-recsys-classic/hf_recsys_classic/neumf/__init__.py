from .configuration_neumf import NeuMFConfig
from .modeling_neumf import NeuMFModel, NeuMFPreTrainedModel

__all__ = ["NeuMFConfig", "NeuMFModel", "NeuMFPreTrainedModel"]
