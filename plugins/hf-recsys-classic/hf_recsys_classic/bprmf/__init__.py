from .configuration_bprmf import BPRMFConfig
from .modeling_bprmf import BPRMFModel, BPRMFPreTrainedModel, NegativeSampler

__all__ = ["BPRMFConfig", "BPRMFModel", "BPRMFPreTrainedModel", "NegativeSampler"]
