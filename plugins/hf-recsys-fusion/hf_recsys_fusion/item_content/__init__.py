from .configuration_item_content import ItemContentConfig
from .modeling_item_content import ItemContentModel, ItemContentPreTrainedModel

__all__ = ["ItemContentConfig", "ItemContentModel", "ItemContentPreTrainedModel"]
