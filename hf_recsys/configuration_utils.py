"""``RecConfig``: the base configuration of every hf-recsys model."""

from __future__ import annotations

from transformers import PreTrainedConfig


class RecConfig(PreTrainedConfig):
    """Base configuration for recommenders.

    Sizes live in the config so that a config alone builds a model; callers fill them from the data's id
    vocabulary (``fit`` does it for you). Subclasses add their own typed keyword defaults, validate them in
    ``__init__`` and pass ``**kwargs`` up.

    Args:
        num_users: number of users in the user vocabulary (0 until the model is fitted or sized).
        num_items: number of items in the item vocabulary.
        dataset_info: free-form facts about the training data (name, sizes, split) recorded for model cards.
    """

    model_type = "hf_recsys"

    def __init__(self, num_users: int = 0, num_items: int = 0, dataset_info: dict | None = None, **kwargs):
        for name, value in (("num_users", num_users), ("num_items", num_items)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a non-negative int, got {value!r}.")
        self.num_users = num_users
        self.num_items = num_items
        self.dataset_info = dict(dataset_info or {})
        super().__init__(**kwargs)


def check_choice(cfg: RecConfig, name: str, value: object, choices: tuple) -> None:
    """Raise a ``ValueError`` naming the option and its allowed values when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{type(cfg).__name__}: {name}={value!r} is not one of {', '.join(map(repr, choices))}.")


def check_positive(cfg: RecConfig, name: str, value: float, allow_zero: bool = False) -> None:
    """Raise a ``ValueError`` naming the option when ``value`` is not > 0 (or >= 0 with ``allow_zero``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{type(cfg).__name__}: {name} must be a number {bound}, got {value!r}.")


__all__ = ["RecConfig", "check_choice", "check_positive"]
