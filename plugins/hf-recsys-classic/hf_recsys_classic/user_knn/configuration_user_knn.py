"""Configuration of user-based collaborative filtering (UserKNN)."""

from __future__ import annotations

from ..item_knn.configuration_item_knn import NeighbourhoodConfig


class UserKNNConfig(NeighbourhoodConfig):
    """Configuration of :class:`UserKNNModel`: top-``k`` pruned user-user cosine (see
    :class:`~hf_recsys_classic.item_knn.configuration_item_knn.NeighbourhoodConfig` for every option). ``k``
    defaults to 50."""

    model_type = "user_knn"

    def __init__(self, k: int = 50, **kwargs):  # an own __init__: transformers 5 makes config subclasses dataclasses
        super().__init__(k=k, **kwargs)


__all__ = ["UserKNNConfig"]
