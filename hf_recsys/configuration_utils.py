"""``RecConfig``: the base configuration of every hf-recsys model."""

from __future__ import annotations

from transformers import PreTrainedConfig


class RecConfig(PreTrainedConfig):
    """Base configuration for recommenders.

    Sizes live in the config so that a config alone builds a model; callers fill them from the data's id
    vocabulary (``fit`` does it for you). Subclasses add typed options either as dataclass fields (the transformers
    v5 style: annotated class attributes, validated in ``__post_init__``) or through a classic ``__init__`` with
    typed keyword defaults that validates them and passes ``**kwargs`` up. A subclass that only sets
    ``model_type`` works as is.

    Args:
        num_users: number of users in the user vocabulary (0 until the model is fitted or sized).
        num_items: number of items in the item vocabulary.
        dataset_info: facts about the training data (name, sizes, split) recorded for model cards.
        evaluation: the evaluation results recorded for the model card (``hf_recsys.hub.record_evaluation``).
        training_args: training options recorded for the model card.
    """

    model_type = "hf_recsys"

    num_users: int = 0
    num_items: int = 0
    dataset_info: dict | None = None
    evaluation: dict | None = None
    training_args: dict | None = None

    def __post_init__(self, **kwargs):
        for name in ("num_users", "num_items"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a non-negative int, got {value!r}.")
        self.dataset_info = dict(self.dataset_info or {})
        super().__post_init__(**kwargs)


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
