"""The model registry: a plain ``name -> (config class, model class)`` dict, filled from entry points on first use.

Plugins publish an entry point in the group ``hf_recsys.models`` whose name is the ``model_type`` and whose value
is the model class (``"pkg.module:MyModel"``); the model class names its config through ``config_class``. Entry
points are read as strings when first needed and a plugin module is imported only when one of its names is looked
up (or when every model is listed). A plugin that fails to import is reported with its distribution name and does
not break the others.

The registry also makes ``transformers.AutoConfig`` / ``transformers.AutoModel`` aware of every registered model, so
``transformers.AutoModel.from_pretrained(folder)`` loads any hf-recsys model once ``hf_recsys`` is imported.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from transformers import AutoConfig, AutoModel, PreTrainedConfig, PreTrainedModel

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hf_recsys.models"


@dataclass(frozen=True)
class ModelSpec:
    """What the registry holds for one model type."""

    name: str
    config_class: type[PreTrainedConfig]
    model_class: type[PreTrainedModel]
    distribution: str | None = None


@dataclass(frozen=True)
class PluginError:
    """A plugin entry point that could not be loaded."""

    name: str
    value: str
    distribution: str | None
    error: str


class RegistryError(ValueError):
    """A registration was refused (duplicate name, or config and model that do not match)."""


class UnknownModelTypeError(KeyError):
    """No registered model has this ``model_type``."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0])


_MODELS: dict[str, ModelSpec] = {}
_PENDING: dict[str, EntryPoint] | None = None  # entry points not imported yet; None = group not read yet
_ERRORS: dict[str, PluginError] = {}


def register_model(
    name: str,
    config_cls: type[PreTrainedConfig],
    model_cls: type[PreTrainedModel],
    *,
    exist_ok: bool = False,
    distribution: str | None = None,
) -> None:
    """Register a recommender under ``name`` (its ``model_type``).

    Args:
        name: the registry key; must equal ``config_cls.model_type``.
        config_cls: the model's config class.
        model_cls: the model class; its ``config_class`` must be ``config_cls``.
        exist_ok: replace an existing registration instead of refusing it.
        distribution: the distribution that provides the model (filled in for entry points).

    Raises:
        RegistryError: the name is taken, or the name, config and model do not match.

    Example:
        ```python
        >>> from hf_recsys import register_model
        >>> register_model("my_model", MyConfig, MyModel)  # doctest: +SKIP
        ```
    """
    if getattr(config_cls, "model_type", None) != name:
        raise RegistryError(
            f"Cannot register {name!r}: {config_cls.__name__}.model_type is "
            f"{getattr(config_cls, 'model_type', None)!r}; "
            "the registry key must equal the config's model_type."
        )
    if getattr(model_cls, "config_class", None) is not config_cls:
        raise RegistryError(
            f"Cannot register {name!r}: {model_cls.__name__}.config_class is "
            f"{getattr(getattr(model_cls, 'config_class', None), '__name__', None)}, not {config_cls.__name__}."
        )
    existing = _MODELS.get(name)
    if existing is not None and not exist_ok:
        if existing.config_class is config_cls and existing.model_class is model_cls:
            return  # the same registration twice (e.g. a module imported again) is harmless
        raise RegistryError(
            f"A model named {name!r} is already registered ({existing.model_class.__module__}."
            f"{existing.model_class.__name__}, from {existing.distribution or 'code'}); "
            "pass exist_ok=True to replace it."
        )
    _MODELS[name] = ModelSpec(name, config_cls, model_cls, distribution)
    AutoConfig.register(name, config_cls, exist_ok=True)
    AutoModel.register(config_cls, model_cls, exist_ok=True)


def _read_entry_points() -> dict[str, EntryPoint]:
    global _PENDING
    if _PENDING is None:
        _PENDING = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in _MODELS}
    return _PENDING


def _load_entry_point(name: str) -> None:
    ep = _read_entry_points().pop(name, None)
    if ep is None:
        return
    dist = ep.dist.name if ep.dist is not None else None
    try:
        model_cls = ep.load()
        config_cls = model_cls.config_class
        register_model(name, config_cls, model_cls, distribution=dist)
    except Exception as exc:  # a broken plugin must not break the others
        err = PluginError(name, ep.value, dist, f"{type(exc).__name__}: {exc}")
        _ERRORS[name] = err
        logger.warning(
            "hf-recsys plugin %r from distribution %r failed to load (%s); other models are unaffected.",
            name,
            dist,
            err.error,
        )


def get_model_spec(name: str) -> ModelSpec:
    """Look up a registered model by ``model_type``, importing its plugin on first use.

    Raises:
        UnknownModelTypeError: nothing is registered under ``name`` (the message lists what is, and names a plugin
            that failed to load under that name).
    """
    if name not in _MODELS:
        _load_entry_point(name)
    if name in _MODELS:
        return _MODELS[name]
    if name in _ERRORS:
        e = _ERRORS[name]
        raise UnknownModelTypeError(
            f"Model type {name!r} comes from distribution {e.distribution!r}, which failed to load: {e.error}"
        )
    known = ", ".join(sorted(set(_MODELS) | set(_read_entry_points()))) or "none"
    raise UnknownModelTypeError(
        f"Unknown model type {name!r}. Registered model types: {known}. "
        "Install the plugin that provides it (e.g. `pip install -e plugins/hf-recsys-classic`)."
    )


def list_models() -> dict[str, ModelSpec]:
    """Every registered model (all entry points are loaded), as ``{model_type: ModelSpec}``."""
    for name in list(_read_entry_points()):
        _load_entry_point(name)
    return dict(sorted(_MODELS.items()))


def plugin_errors() -> dict[str, PluginError]:
    """Entry points that failed to load so far, as ``{name: PluginError}``."""
    return dict(_ERRORS)


def refresh_entry_points() -> None:
    """Forget the cached entry-point list so that newly installed plugins are seen (tests, notebooks)."""
    global _PENDING
    _PENDING = None
    _ERRORS.clear()


class _LazyPluginContent(dict):
    """Stands in for transformers' ``CONFIG_MAPPING._extra_content``: a miss on an hf-recsys entry-point name
    loads that plugin, so ``AutoConfig``/``AutoModel`` resolve plugin models without importing every plugin."""

    def __contains__(self, key: object) -> bool:
        if not dict.__contains__(self, key) and isinstance(key, str) and key in _read_entry_points():
            _load_entry_point(key)
        return dict.__contains__(self, key)


def install_transformers_hook() -> None:
    """Let transformers' AutoConfig find hf-recsys plugin models lazily.

    Falls back to loading every entry point eagerly if transformers' internals are not what this expects.
    """
    from transformers.models.auto import configuration_auto

    mapping = configuration_auto.CONFIG_MAPPING
    content = getattr(mapping, "_extra_content", None)
    if isinstance(content, _LazyPluginContent):
        return
    if isinstance(content, dict):
        mapping._extra_content = _LazyPluginContent(content)
    else:  # pragma: no cover - depends on the transformers version
        list_models()


__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelSpec",
    "PluginError",
    "RegistryError",
    "UnknownModelTypeError",
    "get_model_spec",
    "install_transformers_hook",
    "list_models",
    "plugin_errors",
    "refresh_entry_points",
    "register_model",
]
