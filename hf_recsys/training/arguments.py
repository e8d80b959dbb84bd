"""Typed options of ``hf-recsys train``: model, data and training arguments, read from a YAML/JSON file and the
command line with transformers' ``HfArgumentParser`` (command-line values override the file).

```
hf-recsys train examples/train/bprmf_ml_latest_small.yaml --learning_rate 0.01 --output_dir runs/bprmf
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

SPLITS = ("leave_last_out", "temporal_user", "global_temporal", "random", "none")
STRATEGIES = ("no", "steps", "epoch")
PRECISIONS = ("no", "fp16", "bf16")


def _choice(owner: str, name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{owner}.{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")


def _mapping(owner: str, name: str, value: Any, parse_values: bool = False) -> dict[str, Any]:
    """A mapping given in the config file (a dict) or on the command line: ``key=value[,key=value]`` as the other
    ``hf-recsys`` commands take it (values parsed as JSON with ``parse_values``), or a JSON object."""
    if value is None or value == "":
        return {}
    if isinstance(value, dict):
        return dict(value)
    text = value.strip()
    if not text.startswith("{"):
        out = {}
        for item in (part for part in text.split(",") if part.strip()):
            if "=" not in item:
                raise ValueError(f"{owner}.{name}: entries look like key=value (or give a JSON object), got {item!r}.")
            key, raw = (x.strip() for x in item.split("=", 1))
            out[key] = _json_or_text(raw) if parse_values else raw
        return out
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{owner}.{name} must be key=value pairs or a JSON object: {exc}") from None
    if not isinstance(parsed, dict):
        raise ValueError(f"{owner}.{name} must be a mapping, got {type(parsed).__name__}.")
    return parsed


def _json_or_text(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


# the Accelerate trackers and the package each one needs
_TRACKER_PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow", "comet_ml": "comet_ml"}


def _check_trackers(report_to: Sequence[str]) -> None:
    """Fail before training when a tracker's package is missing (Accelerate would skip it and log nothing)."""
    import importlib.util

    for tracker in report_to:
        package = _TRACKER_PACKAGES.get(tracker)
        if package and importlib.util.find_spec(package) is None:
            hint = 'pip install "hf-recsys[train]"' if tracker == "tensorboard" else f"pip install {package}"
            raise ValueError(f"RecTrainingArguments.report_to={tracker!r} needs the {package} package: {hint}.")


@dataclass
class ModelArguments:
    """Which model to train.

    Give ``model_type`` (a registered family, see ``hf-recsys plugins``) with optional ``model_config`` overrides, or
    ``model_name_or_path`` (a saved hf-recsys model, local or on the Hub) to continue training it.
    """

    model_type: str | None = field(
        default=None, metadata={"help": "registered model family, e.g. causal_sequential, bprmf, neumf"}
    )
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "a saved hf-recsys model (folder or Hub id) to continue training"}
    )
    model_config: str | None = field(
        default=None,
        metadata={
            "help": "config options of the model: a mapping in the config file; key=value,key=value or a JSON object "
            "on the command line (`hf-recsys models describe <model_type>` lists them)"
        },
    )

    def __post_init__(self):
        if (self.model_type is None) == (self.model_name_or_path is None):
            raise ValueError("Give exactly one of model_type (a registered family) or model_name_or_path.")
        self.model_config = _mapping("ModelArguments", "model_config", self.model_config, parse_values=True)


@dataclass
class DataArguments:
    """The interaction log and its split into train / validation / test.

    ``dataset`` is a log file or folder (CSV, TSV, Parquet, JSONL, ``save_to_disk``), a MovieLens folder,
    ``ml-latest-small`` (``$HF_RECSYS_ML_LATEST_SMALL`` or ``../shared/data/ml-latest-small``) or ``synthetic``.
    Alternatively give ready ``train_file`` / ``validation_file`` / ``test_file`` and ``split: none``.
    """

    dataset: str | None = field(
        default=None, metadata={"help": "log path, MovieLens folder, ml-latest-small, synthetic"}
    )
    train_file: str | None = field(default=None, metadata={"help": "a ready training log (with split: none)"})
    validation_file: str | None = field(default=None, metadata={"help": "a ready validation log"})
    test_file: str | None = field(default=None, metadata={"help": "a ready test log"})
    columns: str | None = field(
        default=None,
        metadata={"help": "canonical=source column names, e.g. user_id=userId,item_id=movieId (or a JSON object)"},
    )
    split: str = field(default="leave_last_out", metadata={"help": "one of " + ", ".join(SPLITS)})
    n_test: int = field(default=1, metadata={"help": "leave_last_out: test items per user"})
    n_validation: int = field(default=1, metadata={"help": "leave_last_out: validation items per user"})
    test_ratio: float = field(default=0.2, metadata={"help": "temporal/random splits: share of test interactions"})
    validation_ratio: float = field(default=0.1, metadata={"help": "share of validation interactions"})
    min_rating: float | None = field(
        default=None, metadata={"help": "keep only interactions rated at least this (implicit-feedback training)"}
    )
    item_text_model: str | None = field(
        default=None,
        metadata={
            "help": "a local text encoder folder (transformers AutoModel, e.g. all-MiniLM-L6-v2): each item's text is "
            "embedded (mean-pooled, cached) for a model with text_fusion (its item_text_dim defaults to the "
            "encoder's width)"
        },
    )
    item_text_file: str | None = field(
        default=None,
        metadata={
            "help": "item texts for item_text_model: an item table as load_items reads it (item_id with title, "
            "genres, tags; e.g. MovieLens movies.csv); default: the dataset's own, for MovieLens folders"
        },
    )
    synthetic_users: int = field(default=500, metadata={"help": "dataset=synthetic: number of users"})
    synthetic_items: int = field(default=300, metadata={"help": "dataset=synthetic: number of items"})
    synthetic_interactions: int = field(default=10_000, metadata={"help": "dataset=synthetic: number of rows"})

    def __post_init__(self):
        _choice("DataArguments", "split", self.split, SPLITS)
        self.columns = _mapping("DataArguments", "columns", self.columns)
        if self.dataset is None and self.train_file is None:
            raise ValueError("DataArguments: give dataset (a log to split) or train_file (a ready training log).")
        if self.dataset is not None and self.train_file is not None:
            raise ValueError("DataArguments: give dataset or train_file, not both.")
        if self.train_file is not None and self.split != "none":
            raise ValueError("DataArguments: train_file is already split; set split: none (or use dataset).")
        if self.dataset is not None and self.split == "none":
            raise ValueError("DataArguments: split: none needs train_file (and validation_file/test_file).")
        if self.item_text_file is not None and self.item_text_model is None:
            raise ValueError("DataArguments: item_text_file needs item_text_model (the encoder of the texts).")


@dataclass
class RecTrainingArguments:
    """Options of :class:`~hf_recsys.training.RecTrainer`, named as in transformers' ``TrainingArguments``.

    The batch of one optimiser step holds ``per_device_train_batch_size * num_processes *
    gradient_accumulation_steps`` examples; every example is used once per epoch across all processes.
    """

    output_dir: str | None = field(default=None, metadata={"help": "where checkpoints and the final model go"})
    overwrite_output_dir: bool = field(default=False, metadata={"help": "allow an output_dir that holds a model"})
    num_train_epochs: int | None = field(
        default=None, metadata={"help": "passes over the training examples (default: the model config's epochs)"}
    )
    max_steps: int = field(default=-1, metadata={"help": "stop after this many optimiser steps (-1: all epochs)"})
    per_device_train_batch_size: int | None = field(
        default=None, metadata={"help": "examples per process per micro-step (default: the config's batch_size)"}
    )
    gradient_accumulation_steps: int = field(default=1, metadata={"help": "micro-steps per optimiser step"})
    learning_rate: float | None = field(default=None, metadata={"help": "learning rate (default: the config's)"})
    optim: str | None = field(
        default=None, metadata={"help": "adamw, adam, adagrad or sgd (default: the model config's optimizer)"}
    )
    weight_decay: float | None = field(default=None, metadata={"help": "weight decay (default: the config's)"})
    adam_beta1: float = field(default=0.9, metadata={"help": "Adam/AdamW beta1"})
    adam_beta2: float = field(default=0.999, metadata={"help": "Adam/AdamW beta2"})
    adam_epsilon: float = field(default=1e-8, metadata={"help": "Adam/AdamW epsilon"})
    max_grad_norm: float | None = field(
        default=None, metadata={"help": "gradient clipping (0: none; default: the config's max_grad_norm)"}
    )
    lr_scheduler_type: str | None = field(
        default=None,
        metadata={"help": "transformers scheduler name: constant, linear, cosine, ... (default: the config's)"},
    )
    warmup_steps: int = field(default=0, metadata={"help": "linear warm-up steps"})
    mixed_precision: str = field(default="no", metadata={"help": "no, fp16 or bf16 (passed to Accelerate)"})
    seed: int | None = field(
        default=None,
        metadata={"help": "seeds the model, the data order and every sampled negative (default: the config's seed)"},
    )
    eval_strategy: str = field(default="epoch", metadata={"help": "validation: no, steps or epoch"})
    eval_steps: int | None = field(default=None, metadata={"help": "validate every N steps (eval_strategy=steps)"})
    eval_ks: list[int] = field(default_factory=lambda: [10], metadata={"help": "cut-offs of the validation metrics"})
    eval_batch_size: int = field(default=1024, metadata={"help": "users scored at once in evaluation"})
    metric_for_best_model: str = field(default="ndcg@10", metadata={"help": "validation metric that picks the best"})
    greater_is_better: bool = field(default=True, metadata={"help": "whether a larger metric is better"})
    early_stopping_patience: int | None = field(
        default=None, metadata={"help": "stop after this many validations without improvement"}
    )
    early_stopping_threshold: float = field(default=0.0, metadata={"help": "smallest change that counts as better"})
    load_best_model_at_end: bool = field(default=True, metadata={"help": "end with the best validated weights"})
    save_strategy: str = field(default="epoch", metadata={"help": "checkpoints: no, steps or epoch"})
    save_steps: int | None = field(default=None, metadata={"help": "checkpoint every N steps (save_strategy=steps)"})
    save_total_limit: int | None = field(default=2, metadata={"help": "keep only the newest N checkpoints"})
    resume_from_checkpoint: str | None = field(
        default=None, metadata={"help": "a checkpoint folder, or 'latest' for the newest one in output_dir"}
    )
    resume_allow_changes: list[str] | None = field(
        default=None, metadata={"help": "options (or 'data') a resume may change from the checkpoint's; else refused"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log the loss every N steps"})
    report_to: list[str] = field(
        default_factory=lambda: ["none"], metadata={"help": "Accelerate trackers, e.g. tensorboard; none for none"}
    )
    run_name: str | None = field(default=None, metadata={"help": "tracker run name (default: output_dir's name)"})
    disable_tqdm: bool = field(default=False, metadata={"help": "no progress bars"})
    use_cpu: bool = field(default=False, metadata={"help": "train on the CPU even when a GPU is present"})
    ddp_find_unused_parameters: bool = field(
        default=False, metadata={"help": "let DDP handle parameters that get no gradient (slower; for such models)"}
    )
    do_test: bool = field(default=True, metadata={"help": "evaluate the final model on the test split"})
    show_eval_progress: bool = field(default=False, metadata={"help": "progress bar while validating"})

    def __post_init__(self):
        owner = "RecTrainingArguments"
        if not self.output_dir:
            raise ValueError(f"{owner}.output_dir is required: where checkpoints and the trained model are written.")
        for name in ("num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"{owner}.{name} must be >= 1, got {getattr(self, name)!r}.")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"{owner}.max_steps must be -1 (use num_train_epochs) or >= 1, got {self.max_steps}.")
        if self.learning_rate is not None and self.learning_rate <= 0:
            raise ValueError(f"{owner}.learning_rate must be > 0, got {self.learning_rate!r}.")
        _choice(owner, "mixed_precision", self.mixed_precision, PRECISIONS)
        _choice(owner, "eval_strategy", self.eval_strategy, STRATEGIES)
        _choice(owner, "save_strategy", self.save_strategy, STRATEGIES)
        for strategy, steps in (("eval_strategy", "eval_steps"), ("save_strategy", "save_steps")):
            if getattr(self, strategy) == "steps" and (getattr(self, steps) is None or getattr(self, steps) < 1):
                raise ValueError(f"{owner}.{strategy}='steps' needs {steps} >= 1.")
        if self.logging_steps < 1:
            raise ValueError(f"{owner}.logging_steps must be >= 1, got {self.logging_steps}.")
        if self.save_total_limit is not None and self.save_total_limit < 1:
            raise ValueError(f"{owner}.save_total_limit must be >= 1 or None, got {self.save_total_limit}.")
        if self.early_stopping_patience is not None:
            if self.early_stopping_patience < 1:
                raise ValueError(f"{owner}.early_stopping_patience must be >= 1, got {self.early_stopping_patience}.")
            if self.eval_strategy == "no":
                raise ValueError(f"{owner}.early_stopping_patience needs validation: set eval_strategy.")
        if isinstance(self.report_to, str):
            self.report_to = [self.report_to]
        self.report_to = [t for t in self.report_to if t != "none"]
        _check_trackers(self.report_to)
        if not self.eval_ks or any(int(k) < 1 for k in self.eval_ks):
            raise ValueError(f"{owner}.eval_ks must be cut-offs >= 1, got {self.eval_ks}.")
        self.eval_ks = sorted({int(k) for k in self.eval_ks})
        metric = self.metric_for_best_model
        if "@" in metric and int(metric.rsplit("@", 1)[1]) not in self.eval_ks:
            raise ValueError(
                f"{owner}.metric_for_best_model={metric!r} is computed at a cut-off not in eval_ks={self.eval_ks}."
            )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ARGUMENT_CLASSES = (ModelArguments, DataArguments, RecTrainingArguments)


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The options in a YAML (``.yaml``/``.yml``) or JSON file, as one flat mapping."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Training config file not found: {path}")
    with open(path, encoding="utf-8") as f:
        if path.endswith((".yaml", ".yml")):
            import yaml

            data = yaml.safe_load(f)
        elif path.endswith(".json"):
            data = json.load(f)
        else:
            raise ValueError(f"Training config {path} must end in .yaml, .yml or .json.")
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"Training config {path} must hold a mapping of option: value, got {type(data).__name__}.")
    return data


def parse_train_args(
    argv: Sequence[str] | None = None, config_file: str | os.PathLike | None = None
) -> tuple[ModelArguments, DataArguments, RecTrainingArguments]:
    """Parse the options of ``hf-recsys train``: a config file's values, overridden by ``argv``.

    Args:
        argv: command-line options (``["--learning_rate", "0.01", ...]``).
        config_file: a YAML or JSON file with the same option names (flat, no sections).

    Returns:
        ``(model_args, data_args, training_args)``.

    Raises:
        ValueError: an option in the file that no argument class knows (its name is given), or an invalid value.

    Example:
        ```python
        >>> from hf_recsys.training import parse_train_args
        >>> m, d, t = parse_train_args(["--model_type", "bprmf", "--dataset", "synthetic", "--output_dir", "out"])
        >>> (m.model_type, d.split, t.learning_rate)
        ('bprmf', 'leave_last_out', 0.001)
        ```
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(ARGUMENT_CLASSES, prog="hf-recsys train")
    if config_file is not None:
        values = read_config_file(config_file)
        known = {f.name for cls in ARGUMENT_CLASSES for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            import difflib

            named = [
                u + "".join(f" (did you mean {m!r}?)" for m in difflib.get_close_matches(u, known, n=1))
                for u in unknown
            ]
            raise ValueError(
                f"Unknown option(s) in {config_file}: {', '.join(named)}. Known options: {', '.join(sorted(known))}."
            )
        parser.set_defaults(**values)
    model_args, data_args, training_args, rest = parser.parse_args_into_dataclasses(
        args=list(argv or []), return_remaining_strings=True, look_for_args_file=False
    )
    if rest:
        raise ValueError(f"Unknown command-line option(s): {' '.join(rest)}")
    return model_args, data_args, training_args


__all__ = [
    "ARGUMENT_CLASSES",
    "DataArguments",
    "ModelArguments",
    "RecTrainingArguments",
    "parse_train_args",
    "read_config_file",
]
