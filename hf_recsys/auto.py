"""``AutoRecConfig`` and ``AutoModelForRecommendation``: thin front doors over the registry."""

from __future__ import annotations

import os
from typing import Any

from .configuration_utils import RecConfig, check_config_kwargs
from .modeling_utils import RecPreTrainedModel
from .registry import get_model_spec
from .serialization import recover_if_interrupted, saved_model_type

_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def check_model_path(path: str | os.PathLike) -> None:
    """Refuse at once a model path that is neither a local folder nor a possible Hub repo id.

    A Hub repo id has the form ``org/name``. A path that looks local (absolute, ``./``, ``~``, a trailing slash,
    more than one ``/``, or whose first part is a local folder, like ``runs/bprmf`` beside ``runs/``) is never sent
    to the Hub, where it would fail with an unrelated repo-id message or after a long network wait.

    Raises:
        FileNotFoundError: naming the path and why it is not a Hub repo id either.
    """
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    text = os.fspath(path)
    recover_if_interrupted(text)  # a save killed between its two renames leaves the folder under a staging name
    if os.path.isdir(text):
        return
    if os.path.isfile(text):
        raise FileNotFoundError(f"{text} is a file: give the folder that holds config.json and the weights.")
    first = text.split("/")[0]
    looks_local = (
        os.path.isabs(text)
        or text.startswith((".", "~"))
        or text.endswith(("/", os.sep))
        or text.count("/") > 1
        or ("/" in text and os.path.isdir(first))
    )
    try:
        validate_repo_id(text)
        valid = "/" in text  # hf-recsys models live in org/name repos (no canonical single-name models)
    except HFValidationError:
        valid = False
    if looks_local or not valid:
        why = "it looks like a local path" if looks_local else "a Hub repo id has the form org/name"
        raise FileNotFoundError(f"No such local model folder or Hub repo: {text} ({why}; nothing was downloaded).")


def _model_type_of(path: str | os.PathLike, kwargs: dict) -> str:
    check_model_path(path)
    return saved_model_type(path, {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs})


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
        """A fresh config of the registered model ``model_type``, with ``kwargs`` as options.

        Raises:
            ValueError: for an option the config does not take (with a did-you-mean suggestion).
        """
        config_class = get_model_spec(model_type).config_class
        check_config_kwargs(config_class, kwargs)
        return config_class(**kwargs)

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
        """A fresh model of type ``model_type`` with a config built from ``config_kwargs``.

        Raises:
            ValueError: for an option the config does not take (with a did-you-mean suggestion).
        """
        spec = get_model_spec(model_type)
        check_config_kwargs(spec.config_class, config_kwargs)
        return spec.model_class(spec.config_class(**config_kwargs))

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> RecPreTrainedModel:
        """Load a saved model (local folder or Hub repo id) with its id vocabularies."""
        spec = get_model_spec(_model_type_of(pretrained_model_name_or_path, kwargs))
        return spec.model_class.from_pretrained(pretrained_model_name_or_path, **kwargs)


__all__ = ["AutoModelForRecommendation", "AutoRecConfig", "check_model_path"]
