from .configuration_biased_mf import BiasedMFConfig
from .modeling_biased_mf import BiasedMFModel, BiasedMFPreTrainedModel

__all__ = ["BiasedMFConfig", "BiasedMFModel", "BiasedMFPreTrainedModel"]
