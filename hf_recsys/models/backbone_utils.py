"""What the backbone recommenders share: a config base with the backbone and LoRA options, and a model mixin that
builds the backbone (by path / Hub id, or from a config dict for tiny test models), freezes it or wraps it in a peft
LoRA adapter, saves only what cannot be rebuilt from ``base_model`` and loads it back. A LoRA adapter is saved in
peft's own format (``adapter_model.safetensors`` + ``adapter_config.json``), so
``peft.PeftModel.from_pretrained(base, folder)`` opens the recommender's folder too.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..configuration_utils import RecConfig, check_positive
from .fast_dropout import use_fast_dropout

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
ADAPTER_WEIGHTS_FILE = "adapter_model.safetensors"
ADAPTER_CONFIG_FILE = "adapter_config.json"
BACKBONE_PREFIX = "backbone."
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")

#: LoRA target modules per backbone ``model_type`` (module names that exist in transformers 5.x); others use
#: ``"all-linear"``.
DEFAULT_LORA_TARGETS: dict[str, list[str]] = {
    "bert": ["query", "key", "value", "dense"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "llama": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "vit": ["q_proj", "k_proj", "v_proj", "o_proj", "fc1", "fc2"],
}


#: the module list holding the layers, where it sits at the top of the backbone (peft's default pattern needs a
#: prefix before it, so ``lora_layers`` would match nothing)
LORA_LAYERS_PATTERN: dict[str, str] = {"gpt2": "h", "llama": "layers"}


class BackboneRecConfig(RecConfig):
    """Options every backbone recommender shares (subclasses add their own and set ``model_type``).

    Args:
        backbone_name_or_path: a local folder or Hub id of a pretrained ``AutoModel`` backbone. Recorded as
            ``base_model``; a LoRA or frozen model saves without the backbone and reloads it from here.
        backbone_config: instead of pretrained weights, a backbone config as a dict with a ``model_type`` (e.g.
            ``{"model_type": "gpt2", "n_layer": 2, "n_embd": 64, "n_head": 2}``): a randomly initialised backbone.
        freeze_backbone: do not train the backbone weights (adapters and heads still train).
        use_lora: wrap the backbone in a peft LoRA adapter (implies a frozen base backbone).
        lora_r, lora_alpha, lora_dropout: LoRA rank, scaling and dropout.
        lora_target_modules: module names to adapt; ``None`` picks them from the backbone type
            (:data:`DEFAULT_LORA_TARGETS`).
        lora_layers: adapt only these layer indices (``None``: all layers).
        base_model: set from ``backbone_name_or_path``; kept for model cards and reloading.
        **kwargs: passed to :class:`RecConfig`.
    """

    def __init__(
        self,
        backbone_name_or_path: str | None = None,
        backbone_config: dict | None = None,
        freeze_backbone: bool = False,
        use_lora: bool = False,
        lora_r: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.0,
        lora_target_modules: list[str] | str | None = None,
        lora_layers: list[int] | None = None,
        base_model: str | None = None,
        **kwargs,
    ):
        if backbone_name_or_path is not None and backbone_config is not None:
            raise ValueError(
                f"{type(self).__name__}: give backbone_name_or_path (pretrained) or backbone_config (random init), "
                "not both."
            )
        if backbone_config is not None and "model_type" not in backbone_config:
            raise ValueError(f"{type(self).__name__}: backbone_config needs a 'model_type' key (e.g. 'gpt2').")
        check_positive(self, "lora_r", lora_r)
        check_positive(self, "lora_alpha", lora_alpha)
        check_positive(self, "lora_dropout", lora_dropout, allow_zero=True)
        self.backbone_name_or_path = None if backbone_name_or_path is None else str(backbone_name_or_path)
        self.backbone_config = None if backbone_config is None else dict(backbone_config)
        self.base_model = self.backbone_name_or_path or base_model
        self.freeze_backbone = bool(freeze_backbone)
        self.use_lora = bool(use_lora)
        self.lora_r, self.lora_alpha, self.lora_dropout = int(lora_r), float(lora_alpha), float(lora_dropout)
        self.lora_target_modules = lora_target_modules
        self.lora_layers = None if lora_layers is None else [int(i) for i in lora_layers]
        super().__init__(**kwargs)


def build_backbone(config: BackboneRecConfig, auto_class: Any = None, **overrides: Any) -> nn.Module:
    """The backbone of a config: pretrained from ``backbone_name_or_path``, else randomly initialised from
    ``backbone_config`` (``overrides`` update that dict). ``auto_class`` is the transformers Auto class to build
    (default ``AutoModel``; e.g. ``AutoModelForCausalLM`` for a model that reads the LM head's logits)."""
    from transformers import AutoConfig, AutoModel

    auto_class = auto_class or AutoModel
    if config.backbone_name_or_path is not None:
        return auto_class.from_pretrained(config.backbone_name_or_path)
    if config.backbone_config is None:
        raise ValueError(f"{type(config).__name__} names no backbone: set backbone_name_or_path or backbone_config.")
    cfg = dict(config.backbone_config) | overrides
    return auto_class.from_config(AutoConfig.for_model(**cfg))


def lora_targets(config: BackboneRecConfig, backbone_type: str) -> list[str] | str:
    """The configured LoRA target modules, or the default for this backbone type."""
    if config.lora_target_modules is not None:
        return config.lora_target_modules
    return DEFAULT_LORA_TARGETS.get(backbone_type, "all-linear")


def prepare_backbone(backbone: nn.Module, config: BackboneRecConfig) -> nn.Module:
    """Freeze the backbone and/or wrap it in a LoRA adapter, as the config says; its dropout layers become
    :class:`~hf_recsys.models.fast_dropout.FastDropout` (the same rates, cheaper masks on CPU)."""
    use_fast_dropout(backbone)
    if config.freeze_backbone or config.use_lora:
        backbone.requires_grad_(False)
    if not config.use_lora:
        return backbone
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=lora_targets(config, backbone.config.model_type),
        layers_to_transform=config.lora_layers,
        layers_pattern=LORA_LAYERS_PATTERN.get(backbone.config.model_type) if config.lora_layers else None,
        bias="none",
        fan_in_fan_out=backbone.config.model_type == "gpt2",  # GPT-2 stores its linear layers as Conv1D
    )
    return get_peft_model(backbone, lora)


@contextlib.contextmanager
def eval_mode(module: nn.Module):
    """Run a block in eval mode (dropout off, deterministic scores), restoring the previous mode afterwards."""
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        if was_training:
            module.train()


def save_peft_adapter(backbone: nn.Module, folder: str | os.PathLike, base_model: str | None) -> None:
    """Write a peft-wrapped backbone's adapter as ``adapter_model.safetensors`` + ``adapter_config.json`` (what
    ``PeftModel.save_pretrained`` writes, without its README, which would replace the model card)."""
    import copy

    from peft import get_peft_model_state_dict

    adapter = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(backbone).items()}
    save_file(adapter, os.path.join(folder, ADAPTER_WEIGHTS_FILE), metadata={"format": "pt"})
    peft_config = copy.deepcopy(backbone.peft_config["default"])
    peft_config.base_model_name_or_path = base_model
    peft_config.inference_mode = True
    peft_config.save_pretrained(folder)


def load_peft_adapter(backbone: nn.Module, adapter_file: str, where: str, missing: list[str]) -> list[str]:
    """Load ``adapter_model.safetensors`` into a peft-wrapped backbone; return ``missing`` (keys a
    ``load_state_dict`` of the whole model missed) less the adapter keys it filled.

    Raises:
        ValueError: the adapter file holds keys the backbone does not have, or lacks some it has.
    """
    from peft import set_peft_model_state_dict

    hint = "Check lora_r / lora_target_modules / lora_layers in config.json against the adapter's."
    try:
        result = set_peft_model_state_dict(backbone, load_file(adapter_file))
    except RuntimeError as exc:  # shapes differ
        raise ValueError(
            f"{where}/{ADAPTER_WEIGHTS_FILE} does not fit the configured LoRA adapter: {exc}. {hint}"
        ) from exc
    expected = {k for k, _ in backbone.named_parameters() if "lora_" in k}
    lost = sorted(k for k in result.missing_keys if k in expected)
    if result.unexpected_keys or lost:
        raise ValueError(
            f"{where}/{ADAPTER_WEIGHTS_FILE} does not match the LoRA adapter of the configured backbone: unexpected "
            f"{list(result.unexpected_keys)[:5]}, missing {lost[:5]}. {hint}"
        )
    return [k for k in missing if not (k.startswith(BACKBONE_PREFIX) and "lora_" in k)]


class BackboneModelMixin:
    """Saving, loading, LoRA merging and parameter accounting for models whose backbone lives in ``self.backbone``.

    Saving writes ``config.json``, ``model.safetensors`` (every weight except, when the backbone is pretrained and
    frozen or LoRA-wrapped, the backbone's own weights, which are rebuilt from ``config.base_model``), the id
    vocabularies and the seen-items matrix; a LoRA adapter goes into ``adapter_model.safetensors`` +
    ``adapter_config.json`` (peft's format, ``base_model_name_or_path`` = ``config.base_model``). Loading rebuilds
    the model from its config (so the backbone comes from ``base_model``), then loads the saved weights over it,
    refusing a checkpoint that misses anything else.
    """

    def backbone_is_rebuildable(self) -> bool:
        """The backbone's base weights equal those at ``base_model`` (pretrained and not trained)."""
        cfg = self.config
        return cfg.backbone_name_or_path is not None and (cfg.use_lora or cfg.freeze_backbone)

    def _is_base_backbone_key(self, key: str) -> bool:
        return key.startswith(BACKBONE_PREFIX) and "lora_" not in key

    def _is_adapter_key(self, key: str) -> bool:
        return key.startswith(BACKBONE_PREFIX) and "lora_" in key

    def weights_to_save(self) -> dict[str, torch.Tensor]:
        """The state dict that ``save_pretrained`` writes into ``model.safetensors`` (the LoRA adapter goes to its
        own peft files)."""
        state = self.state_dict()
        if self.backbone_is_rebuildable():
            state = {k: v for k, v in state.items() if not self._is_base_backbone_key(k)}
        if self.config.use_lora:
            state = {k: v for k, v in state.items() if not self._is_adapter_key(k)}
        return {k: v.detach().cpu().contiguous().clone() for k, v in state.items()}

    def _save_weights(self, folder: str | os.PathLike, **kwargs) -> None:
        """Save hook of :meth:`RecPreTrainedModel.save_pretrained`: the config, the weights that cannot be rebuilt
        from ``base_model`` and, for a LoRA model, the adapter in peft's format."""
        self.config.save_pretrained(folder)
        save_file(self.weights_to_save(), os.path.join(folder, WEIGHTS_FILE), metadata={"format": "pt"})
        if self.config.use_lora:
            save_peft_adapter(self.backbone, folder, self.config.base_model)

    @classmethod
    def _load_weights(cls, path: str, *args, **kwargs):
        """Load hook of :meth:`RecPreTrainedModel.from_pretrained` (called after the manifest was verified): rebuild
        the model from its saved config (the backbone from ``base_model``) and load the saved weights over it, the
        LoRA adapter from ``adapter_model.safetensors`` (or, in saves from before the peft format, from
        ``model.safetensors``).

        Raises:
            ValueError: the checkpoint lacks weights that cannot be rebuilt, or holds unknown ones.
        """
        from ..serialization import fetch_file

        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        config = kwargs.get("config")
        if not isinstance(config, cls.config_class):
            config = cls.config_class.from_pretrained(path, **hub)
        model = cls(config)
        weights = fetch_file(path, WEIGHTS_FILE, hub)
        if weights is None:
            raise OSError(f"{path} has no {WEIGHTS_FILE}: the checkpoint is incomplete.")
        missing, unexpected = model.load_state_dict(load_file(weights), strict=False)
        adapter = fetch_file(path, ADAPTER_WEIGHTS_FILE, hub) if config.use_lora else None
        if adapter is not None:
            missing = load_peft_adapter(model.backbone, adapter, path, missing)
        bad_missing = [k for k in missing if not (model.backbone_is_rebuildable() and model._is_base_backbone_key(k))]
        if bad_missing or unexpected:
            raise ValueError(
                f"{path}/{WEIGHTS_FILE} does not match {cls.__name__}: missing {bad_missing[:5]}, unexpected "
                f"{list(unexpected)[:5]}. The checkpoint is truncated or was saved by another model/config."
            )
        model.after_load()
        model.eval()
        return model

    def after_load(self) -> None:
        """Hook: re-freeze fixed tensors after loading (loading may flip ``requires_grad``)."""

    def merge_adapter(self):
        """Merge the LoRA adapter into the backbone weights (one call, for serving): the model becomes a plain
        backbone model with identical scores; saving it then writes the full, merged backbone."""
        if not self.config.use_lora:
            raise ValueError(f"{type(self).__name__} has no LoRA adapter to merge (config.use_lora is False).")
        self.backbone = self.backbone.merge_and_unload()
        self.config.use_lora = False
        self.config.freeze_backbone = False
        self.clear_cache()
        return self

    def clear_cache(self) -> None:
        """Hook: forget cached item representations."""

    def num_parameters_by_trainability(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts."""
        params = list(self.parameters())
        return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


__all__ = [
    "ADAPTER_CONFIG_FILE",
    "ADAPTER_WEIGHTS_FILE",
    "BackboneModelMixin",
    "BackboneRecConfig",
    "DEFAULT_LORA_TARGETS",
    "build_backbone",
    "eval_mode",
    "load_peft_adapter",
    "lora_targets",
    "prepare_backbone",
    "save_peft_adapter",
]
