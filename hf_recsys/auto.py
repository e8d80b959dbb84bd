"""``AutoRecConfig`` and ``AutoModelForRecommendation``: thin front doors over the registry."""

from __future__ import annotations

import os
from typing import Any

from transformers import PreTrainedConfig

from .configuration_utils import RecConfig
from .modeling_utils import RecPreTrainedModel
from .registry import get_model_spec
from .serialization import recover_if_interrupted

_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def _model_type_of(path: str | os.PathLike, kwargs: dict) -> str:
    hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
    recover_if_interrupted(path, hub.get("subfolder"))  # a save killed in this folder is finished or undone first
    config_dict, _ = PreTrainedConfig.get_config_dict(path, **hub)
    model_type = config_dict.get("model_type")
    if not model_type:
        raise ValueError(f"{path}: config.json has no 'model_type'; it was not saved by hf-recsys or transformers.")
    return model_type


class AutoRecConfig:
    """Builds the right :class:`RecConfig` subclass from a ``model_type`` or a saved model.

    Example:
        ```python
        >>> from hf_recsys import AutoRecConfig
        >>> AutoRecConfig.for_model("most_popular", weighting="users").model_type
        'most_popular'
        ```
    """

    def __init__(self):
        raise OSError("Use AutoRecConfig.for_model(model_type, ...) or AutoRecConfig.from_pretrained(path).")

    @classmethod
    def for_model(cls, model_type: str, **kwargs: Any) -> RecConfig:
        """A fresh config of the registered model ``model_type``, with ``kwargs`` as options."""
        return get_model_spec(model_type).config_class(**kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> RecConfig:
        """Load the config of a saved model (local folder or Hub repo id)."""
        spec = get_model_spec(_model_type_of(pretrained_model_name_or_path, kwargs))
        return spec.config_class.from_pretrained(pretrained_model_name_or_path, **kwargs)


class AutoModelForRecommendation:
    """Builds or loads any registered recommender.

    Example:
        ```python
        >>> from hf_recsys import AutoModelForRecommendation
        >>> model = AutoModelForRecommendation.for_model("most_popular")
        >>> model.save_pretrained("out")  # doctest: +SKIP
        >>> model = AutoModelForRecommendation.from_pretrained("out")  # doctest: +SKIP
        ```
    """

    def __init__(self):
        raise OSError("Use AutoModelForRecommendation.from_pretrained(path) or .from_config(config).")

    @classmethod
    def from_config(cls, config: RecConfig) -> RecPreTrainedModel:
        """A fresh (unfitted) model of the config's registered type."""
        return get_model_spec(config.model_type).model_class(config)

    @classmethod
    def for_model(cls, model_type: str, **config_kwargs: Any) -> RecPreTrainedModel:
        """A fresh model of type ``model_type`` with a config built from ``config_kwargs``."""
        spec = get_model_spec(model_type)
        return spec.model_class(spec.config_class(**config_kwargs))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> RecPreTrainedModel:
        """Load a saved model (local folder or Hub repo id) with its id vocabularies."""
        spec = get_model_spec(_model_type_of(pretrained_model_name_or_path, kwargs))
        return spec.model_class.from_pretrained(pretrained_model_name_or_path, **kwargs)


__all__ = ["AutoModelForRecommendation", "AutoRecConfig"]
