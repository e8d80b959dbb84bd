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
        RegistryError: the name is taken (by another registration, by a plugin entry point not loaded yet, or by
            transformers itself, e.g. ``gpt2``: replacing it would break every model built on it), or the name,
            config and model do not match.

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
    if name in _transformers_names():
        raise RegistryError(
            f"Cannot register {name!r}: transformers already has a model type of that name, and replacing it would "
            "break every model built on it. Pick another model_type (e.g. prefix it with your package name)."
        )
    pending = (_PENDING or {}).get(name)
    if pending is not None and not exist_ok and pending.value != f"{model_cls.__module__}:{model_cls.__qualname__}":
        raise RegistryError(
            f"Cannot register {name!r}: the plugin entry point {pending.value!r} (distribution "
            f"{_dist_name(pending)!r}) provides that model type; pass exist_ok=True to replace it."
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
    if _PENDING is not None:
        _PENDING.pop(name, None)
    _MODELS[name] = ModelSpec(name, config_cls, model_cls, distribution)
    AutoConfig.register(name, config_cls)  # public API; refuses transformers' own names (checked above)
    AutoModel.register(config_cls, model_cls, exist_ok=True)  # keyed by this config class, which is ours


def _transformers_names() -> set[str]:
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES

    return set(CONFIG_MAPPING_NAMES)


def _dist_name(ep: EntryPoint) -> str | None:
    return ep.dist.name if getattr(ep, "dist", None) is not None else None


def _read_entry_points() -> dict[str, EntryPoint]:
    global _PENDING
    if _PENDING is None:
        _PENDING = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in _MODELS}
    return _PENDING


def _load_entry_point(name: str) -> None:
    ep = _read_entry_points().pop(name, None)
    if ep is None:
        return
    dist = _dist_name(ep)
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


def lazy_exports(package: str, exports: dict[str, str]):
    """``__getattr__`` and ``__dir__`` for a plugin package whose names are imported on first use (PEP 562), so that
    looking up one model type imports that model's module only, not every family of the plugin.

    Args:
        package: the package's ``__name__``.
        exports: ``{public name: relative module}``, e.g. ``{"EASEModel": ".ease"}``.

    Example:
        ```python
        >>> __getattr__, __dir__ = lazy_exports(__name__, {"EASEModel": ".ease"})  # doctest: +SKIP
        ```
    """
    import importlib

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name], package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


def _lazy_config(name: str) -> type:
    """A stand-in config class registered with ``AutoConfig`` for a plugin model type not imported yet: the first
    use (``AutoConfig.from_pretrained``, ``for_model``, ``AutoModel.from_pretrained``) imports that plugin only, whose
    registration then replaces the stand-in with the real config class."""

    def real() -> type:
        return get_model_spec(name).config_class

    def new(cls, *args, **kwargs):
        return real()(*args, **kwargs)

    def delegate(method: str):
        return classmethod(lambda cls, *a, **k: getattr(real(), method)(*a, **k))

    attrs = {"model_type": name, "__new__": new, "__doc__": f"Lazily imported hf-recsys plugin config {name!r}."}
    attrs |= {m: delegate(m) for m in ("from_dict", "from_pretrained", "from_json_file", "get_config_dict")}
    return type(f"LazyPluginConfig_{name}", (), attrs)


def install_transformers_hook() -> None:
    """Let ``transformers.AutoConfig``/``AutoModel`` find hf-recsys plugin models without importing every plugin.

    Every entry-point name not imported yet is registered with ``AutoConfig.register`` (the public API; no private
    mapping of transformers is replaced) as a stand-in that imports its plugin on first use. Names that transformers
    itself owns are refused with a warning.
    """
    taken = _transformers_names()
    for name, ep in _read_entry_points().items():
        if name in taken:
            _ERRORS[name] = PluginError(name, ep.value, _dist_name(ep), "the name belongs to a transformers model")
            logger.warning(
                "hf-recsys plugin %r from distribution %r was not registered: transformers already has a model type "
                "of that name.",
                name,
                _dist_name(ep),
            )
            continue
        AutoConfig.register(name, _lazy_config(name))


__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelSpec",
    "PluginError",
    "RegistryError",
    "UnknownModelTypeError",
    "get_model_spec",
    "install_transformers_hook",
    "lazy_exports",
    "list_models",
    "plugin_errors",
    "refresh_entry_points",
    "register_model",
]
