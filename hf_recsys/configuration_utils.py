"""``RecConfig``: the base configuration of every hf-recsys model."""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import difflib
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple

from transformers import PreTrainedConfig

# set while a config is rebuilt from a saved dict: a saved config.json may hold keys this version does not know
_REBUILDING = contextvars.ContextVar("hf_recsys_config_rebuilding", default=False)


# what a fitted model records in its config besides its options (a config copied from another one carries them)
_STATE_KEYS = frozenset({"fitted_log", "retrieval_index"})


@contextlib.contextmanager
def _rebuilding() -> Iterator[None]:
    token = _REBUILDING.set(True)
    try:
        yield
    finally:
        _REBUILDING.reset(token)


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
        if not _REBUILDING.get():
            # a misspelt option given to the constructor would otherwise be kept as a silent attribute
            check_config_kwargs(type(self), {k: v for k, v in kwargs.items() if k not in _STATE_KEYS})
        for name in ("num_users", "num_items"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{type(self).__name__}: {name} must be a non-negative int, got {value!r}.")
        self.dataset_info = dict(self.dataset_info or {})
        super().__post_init__(**kwargs)

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **kwargs):
        """Rebuild a config from a saved dict; unlike the constructor, keys this version does not know are kept."""
        with _rebuilding():
            return super().from_dict(config_dict, **kwargs)


def check_choice(cfg: RecConfig, name: str, value: object, choices: tuple) -> None:
    """Raise a ``ValueError`` naming the option and its allowed values when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"{type(cfg).__name__}: {name}={value!r} is not one of {', '.join(map(repr, choices))}.")


def check_positive(cfg: RecConfig, name: str, value: float, allow_zero: bool = False) -> None:
    """Raise a ``ValueError`` naming the option when ``value`` is not > 0 (or >= 0 with ``allow_zero``)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{type(cfg).__name__}: {name} must be a number {bound}, got {value!r}.")


class ConfigOption(NamedTuple):
    """One option of a config class, as listed by :func:`config_options` (``hf-recsys models describe``)."""

    name: str
    type: str
    default: Any
    doc: str
    defined_in: str


# attributes every transformers config accepts (and from_pretrained passes back); not listed as model options
_TRANSFORMERS_KEYS = frozenset(
    {f.name for f in dataclasses.fields(PreTrainedConfig)}
    | set(inspect.signature(PreTrainedConfig.__init__).parameters)
    | {
        "name_or_path", "_name_or_path", "torch_dtype", "dtype", "_commit_hash", "transformers_version",
        "architectures", "attn_implementation", "output_attentions", "num_labels", "pad_token_id", "bos_token_id",
        "eos_token_id", "tie_word_embeddings", "model_type", "auto_map", "use_cache",
    }
) - {"self", "kwargs"}


def _doc_entries(cls: type) -> dict[str, str]:
    """``{option: text}`` from the ``Args:`` section of a class docstring (``a, b: text`` documents both)."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Args:\n(.*?)(?:^\S|\Z)", doc, flags=re.S | re.M)
    entries: dict[str, str] = {}
    current: list[str] = []
    for line in (match.group(1) if match else "").splitlines():
        head = re.match(r"^    (\*{0,2}[\w, ]+?)(?: \(.*?\))?:\s*(.*)$", line)
        if head:
            current = [n.strip() for n in head.group(1).split(",") if n.strip() and not n.strip().startswith("*")]
            for name in current:
                entries[name] = head.group(2).strip()
        elif current and line.strip():
            for name in current:
                entries[name] += " " + line.strip()
    return entries


def config_options(config_class: type[PreTrainedConfig]) -> dict[str, ConfigOption]:
    """The options a config class takes: its own and its hf-recsys bases' ``__init__`` keywords and fields.

    Args:
        config_class: a :class:`RecConfig` subclass.

    Returns:
        ``{name: ConfigOption(name, type, default, doc, defined_in)}``, the most derived class's options first.
    """
    options: dict[str, ConfigOption] = {}
    for klass in config_class.__mro__:
        if klass is PreTrainedConfig or not issubclass(klass, PreTrainedConfig):
            break
        docs = _doc_entries(klass)
        if "__init__" in vars(klass):
            for p in inspect.signature(klass.__init__).parameters.values():
                skip = p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
                if skip or p.name in options or p.name in _TRANSFORMERS_KEYS:
                    continue
                default = None if p.default is p.empty else p.default
                kind = p.annotation if isinstance(p.annotation, str) else getattr(p.annotation, "__name__", "")
                options[p.name] = ConfigOption(p.name, str(kind), default, docs.get(p.name, ""), klass.__name__)
        for name, default in (vars(klass).get("training_defaults") or {}).items():  # taken from **kwargs
            if name not in options:
                doc = docs.get(name) or "training option (hf_recsys.training.TrainingOptions)"
                options[name] = ConfigOption(name, type(default).__name__, default, doc, klass.__name__)
        for name, kind in vars(klass).get("__annotations__", {}).items():
            if name in options or name in _TRANSFORMERS_KEYS or name.startswith("_") or "ClassVar" in str(kind):
                continue
            default = vars(klass).get(name)
            options[name] = ConfigOption(name, str(kind), default, docs.get(name, ""), klass.__name__)
    return options


def check_config_kwargs(config_class: type[PreTrainedConfig], kwargs: Mapping[str, Any]) -> None:
    """Refuse option names ``config_class`` does not take, with the closest valid names as suggestions.

    Used by the user-facing entry points (``for_model``, ``hf-recsys fit --set``, ``hf-recsys train
    --model_config``); ``from_pretrained`` keeps accepting whatever a saved ``config.json`` holds.

    Raises:
        ValueError: naming each unknown option, a did-you-mean suggestion and how to list the options.
    """
    options = config_options(config_class)
    unknown = [k for k in kwargs if k not in options and k not in _TRANSFORMERS_KEYS]
    if not unknown:
        return
    # an option is also found by the words its doc quotes (``lambda`` finds EASE's l2)
    aliases = {name: name for name in options}
    for opt in options.values():
        for word in re.findall(r"``(\w+)``", opt.doc):
            aliases.setdefault(word, opt.name)
    parts = []
    for key in unknown:
        close = list(dict.fromkeys(aliases[m] for m in difflib.get_close_matches(key, list(aliases), n=3, cutoff=0.6)))
        parts.append(f"{key!r}" + (f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""))
    model_type = getattr(config_class, "model_type", "")
    raise ValueError(
        f"{config_class.__name__} has no option {', '.join(parts)}. Its options: {', '.join(options)} "
        f"(`hf-recsys models describe {model_type}` lists them with types, defaults and docs)."
    )


__all__ = ["ConfigOption", "RecConfig", "check_choice", "check_config_kwargs", "check_positive", "config_options"]
