from .configuration_user_knn import UserKNNConfig
from .modeling_user_knn import UserKNNModel, UserKNNPreTrainedModel

__all__ = ["UserKNNConfig", "UserKNNModel", "UserKNNPreTrainedModel"]
