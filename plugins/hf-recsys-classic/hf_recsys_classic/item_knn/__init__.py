from .configuration_item_knn import ItemKNNConfig
from .modeling_item_knn import ItemKNNModel, ItemKNNPreTrainedModel

__all__ = ["ItemKNNConfig", "ItemKNNModel", "ItemKNNPreTrainedModel"]
