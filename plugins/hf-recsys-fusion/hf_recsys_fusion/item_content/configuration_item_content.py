"""Configuration of the item-content similarity model (a content member for cold-start fusion)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig


class ItemContentConfig(RecConfig):
    """Configuration of :class:`ItemContentModel`.

    Args:
        embedding_dim: width of the item feature vectors (0 until fitted; set from the features given to ``fit``).
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "item_content"

    def __init__(self, embedding_dim: int = 0, **kwargs):
        if int(embedding_dim) != embedding_dim or embedding_dim < 0:
            raise ValueError(f"ItemContentConfig: embedding_dim must be a non-negative int, got {embedding_dim!r}.")
        self.embedding_dim = int(embedding_dim)
        super().__init__(**kwargs)


__all__ = ["ItemContentConfig"]
