"""``hf-recsys train``: load and split the data, build the model, train it under Accelerate, test and save it.

The same entry point runs as ``python -m hf_recsys.cli train``, ``accelerate launch -m hf_recsys.cli train`` and
``torchrun --nproc_per_node N -m hf_recsys.cli train``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .arguments import DataArguments, ModelArguments, RecTrainingArguments

logger = logging.getLogger(__name__)


def load_training_data(
    data_args: DataArguments, seed: int = 0, with_items: bool = False
) -> tuple[dict[str, Any], str] | tuple[dict[str, Any], str, Any]:
    """The ``train`` / ``validation`` / ``test`` logs the data arguments describe, and a name for the data; with
    ``with_items`` also the dataset's item table (``item_id``, ``text``, ...) where its loader gives one, else
    ``None``."""
    from .. import data as D

    items = None
    if data_args.split == "none":
        parts = {"train": D.load_interactions(data_args.train_file, columns=data_args.columns or None)}
        for name, path in (("validation", data_args.validation_file), ("test", data_args.test_file)):
            if path:
                parts[name] = D.load_interactions(path, columns=data_args.columns or None)
        found = _filter_rating(parts, data_args), os.path.basename(str(data_args.train_file))
        return (*found, items) if with_items else found
    source = data_args.dataset
    if source == "synthetic":
        log, _ = D.generate_interactions(
            num_users=data_args.synthetic_users,
            num_items=data_args.synthetic_items,
            num_interactions=data_args.synthetic_interactions,
            seed=seed,
        )
        name = "synthetic"
    else:
        if source == "ml-latest-small":
            from ..testing_utils import ML_LATEST_SMALL_ENV, ml_latest_small_path

            found = ml_latest_small_path()
            if found is None:
                raise FileNotFoundError(
                    f"dataset: ml-latest-small was not found: set {ML_LATEST_SMALL_ENV} to its folder "
                    "(or give the folder's path as dataset)."
                )
            source = str(found)
        name = os.path.basename(os.path.normpath(source))
        if os.path.isdir(source) and os.path.isfile(os.path.join(source, "ml-1m.txt")):
            log, items = D.load_movielens_1m_sasrec(source)  # SASRec's ML-1M (user item sequences)
        elif os.path.isdir(source) and _is_movielens(source):
            log, items = D.load_movielens(source)
        else:
            log = D.load_interactions(source, columns=data_args.columns or None)
    log = _filter_rating({"all": log}, data_args)["all"]
    if data_args.split == "leave_last_out":
        parts = D.leave_last_out(log, n_test=data_args.n_test, n_validation=data_args.n_validation)
    elif data_args.split == "temporal_user":
        parts = D.temporal_user_split(
            log, test_ratio=data_args.test_ratio, validation_ratio=data_args.validation_ratio
        )
    elif data_args.split == "global_temporal":
        parts = D.global_temporal_split(log, test_ratio=data_args.test_ratio)
    else:
        parts = D.random_split(
            log, test_ratio=data_args.test_ratio, validation_ratio=data_args.validation_ratio, seed=seed
        )
    return (dict(parts), name, items) if with_items else (dict(parts), name)


def item_text_embeddings(data_args: DataArguments, items: Any) -> tuple[list, np.ndarray] | None:
    """``(item_ids, embeddings)`` of the items' texts by ``data_args.item_text_model`` (mean-pooled last states,
    cached on disk by :func:`~hf_recsys.models.llm.encode_item_texts`), from ``item_text_file`` or else the
    dataset's item table ``items``; ``None`` without ``item_text_model``."""
    if data_args.item_text_model is None:
        return None
    from ..data import load_items
    from ..models.llm import encode_item_texts

    if data_args.item_text_file is not None:
        items = load_items(data_args.item_text_file)
    if items is None or "text" not in items.column_names:
        raise ValueError(
            "item_text_model: this dataset has no item texts; give item_text_file (an item table with item_id and "
            "title/genres/tags columns, as load_items reads it)."
        )
    ids, texts = list(items["item_id"]), list(items["text"])
    return ids, encode_item_texts(texts, data_args.item_text_model, pooling="mean", show_progress=True)


def _size_item_texts(model_args: ModelArguments, data_args: DataArguments) -> None:
    """Check that a new model with ``text_fusion`` gets ``item_text_model`` (and the reverse), and give it the
    encoder's width as its ``item_text_dim`` (or check the one the config gives)."""
    from transformers import AutoConfig

    from ..auto import AutoRecConfig

    encoder = data_args.item_text_model
    if model_args.model_name_or_path is not None:
        if encoder is not None:
            raise ValueError(
                "item_text_model embeds the texts of a new model's items; a saved model (model_name_or_path) keeps "
                "the item text embeddings it was trained with."
            )
        return
    defaults = AutoRecConfig.for_model(model_args.model_type)
    fusion = model_args.model_config.get("text_fusion", getattr(defaults, "text_fusion", "none"))
    if encoder is None:
        if fusion != "none":
            raise ValueError(
                f"text_fusion={fusion!r} needs item texts: set item_text_model (a local text encoder folder, e.g. "
                "all-MiniLM-L6-v2's) and, where the dataset has none, item_text_file."
            )
        return
    if not hasattr(defaults, "item_text_dim"):
        raise ValueError(f"item_text_model: model type {model_args.model_type!r} does not read item texts.")
    if fusion == "none":
        raise ValueError(
            f"item_text_model: {model_args.model_type} with text_fusion 'none' does not read item texts; set "
            "text_fusion ('add' or 'init') in model_config."
        )
    width = AutoConfig.from_pretrained(encoder).hidden_size
    given = model_args.model_config.get("item_text_dim")
    if not given:
        model_args.model_config["item_text_dim"] = width
    elif int(given) != width:
        raise ValueError(f"item_text_dim is {given}, but item_text_model embeds texts in {width} dimensions.")


def _is_movielens(folder: str) -> bool:
    from ..data import detect_movielens

    try:
        detect_movielens(folder)
        return True
    except (ValueError, FileNotFoundError):
        return False


def _filter_rating(parts: dict[str, Any], data_args: DataArguments) -> dict[str, Any]:
    """Keep the interactions rated at least ``min_rating`` (implicit feedback from explicit ratings)."""
    if data_args.min_rating is None:
        return parts
    out = {}
    for name, log in parts.items():
        if "rating" not in log.column_names:
            raise ValueError(f"min_rating={data_args.min_rating} needs a 'rating' column in the {name} log.")
        keep = np.asarray(log["rating"], dtype=np.float64) >= data_args.min_rating
        out[name] = log.select(np.flatnonzero(keep))
    return out


def config_seed(model_args: ModelArguments) -> int:
    """The training seed the model's config gives (its ``seed`` option; the engine's default where it has none)."""
    from ..auto import AutoRecConfig
    from .engine import TrainingOptions

    if model_args.model_name_or_path is not None:
        config = AutoRecConfig.from_pretrained(model_args.model_name_or_path)
        for key, value in model_args.model_config.items():
            setattr(config, key, value)
    else:
        config = AutoRecConfig.for_model(model_args.model_type, **model_args.model_config)
    return TrainingOptions.from_config(config).seed


def build_model(model_args: ModelArguments, train: Any, seed: int):
    """A new model of ``model_type`` with vocabularies built from ``train``, or the saved model to continue."""
    from accelerate.utils import set_seed

    from ..auto import AutoModelForRecommendation
    from ..configuration_utils import check_config_kwargs
    from ..data import build_vocabs

    set_seed(seed)  # the same initial weights on every process
    if model_args.model_name_or_path is not None:
        model = AutoModelForRecommendation.from_pretrained(model_args.model_name_or_path)
        check_config_kwargs(type(model.config), model_args.model_config)
        for key, value in model_args.model_config.items():
            setattr(model.config, key, value)
        return model
    model = AutoModelForRecommendation.for_model(model_args.model_type, **model_args.model_config)
    model.set_vocabs(*build_vocabs(train))
    return model


def run_train(
    model_args: ModelArguments, data_args: DataArguments, training_args: RecTrainingArguments
) -> dict[str, Any]:
    """Train, test and save as the arguments say; returns the summary also written to ``train_results.json``."""

    import datasets

    from ..data import encode_interactions
    from ..hub import record_dataset, record_evaluation
    from .history import EpochTimer, epoch_history, plot_history
    from .trainer import RecTrainer, TrainingInterrupted, make_accelerator

    out = Path(training_args.output_dir)
    if (
        (out / "config.json").exists()
        and not training_args.overwrite_output_dir
        and not training_args.resume_from_checkpoint
    ):
        raise ValueError(
            f"{out} already holds a trained model: set overwrite_output_dir, resume_from_checkpoint, or another "
            "output_dir."
        )
    _size_item_texts(model_args, data_args)  # before the config is first built (config_seed)
    if training_args.seed is None:  # the config's seed, so that fit() and `hf-recsys train` agree by default
        training_args.seed = config_seed(model_args)
    acc = make_accelerator(training_args)
    parts, data_name, items = load_training_data(data_args, seed=training_args.seed, with_items=True)
    train_log = parts["train"]
    texts = item_text_embeddings(data_args, items)
    model = build_model(model_args, train_log, training_args.seed)
    train = encode_interactions(train_log, model.user_vocab, model.item_vocab)
    validation = parts.get("validation")
    if validation is not None and len(validation) == 0:
        validation = None
    if validation is None and training_args.eval_strategy != "no":
        logger.warning("No validation split: training without validation (eval_strategy is ignored).")
    timer = EpochTimer()
    trainer = RecTrainer(
        model, training_args, train, eval_data=validation, accelerator=acc, callbacks=[timer],
        examples_kwargs=None if texts is None else {"item_text_embeddings": texts},
    )  # fmt: skip
    started = time.perf_counter()
    try:
        state = trainer.train()
    except TrainingInterrupted:
        trainer.close()
        raise
    seconds = time.perf_counter() - started
    history = epoch_history(state.log_history, state.steps_per_epoch)
    # every epoch's seconds are in the log history, which checkpoints keep: the total spans resumed runs too
    total = sum(row.get("seconds", 0.0) for row in history) + timer.seconds_after_last_epoch()
    model = trainer.unwrapped
    summary: dict[str, Any] = {
        "model_type": model.config.model_type,
        "num_processes": acc.num_processes,
        "global_step": state.global_step,
        "epochs_completed": state.epoch,
        "best_step": state.best_step,
        "best_metric": state.best_metric,
        "metric_for_best_model": training_args.metric_for_best_model,
        "stopped_early": state.should_stop,
        "train_seconds": round(total, 3),
        "train_seconds_this_run": round(seconds, 3),
        "history": history,
    }
    # from here on, the validation interactions join the history: masked when ranking, read by sequential models
    if validation is not None:
        columns = [c for c in train_log.column_names if c in validation.column_names]
        seen_log = datasets.concatenate_datasets([log.select_columns(columns) for log in (train_log, validation)])
        if hasattr(model, "update_histories"):  # the stored sequences and the seen items
            model.update_histories(seen_log)
        else:
            seen = encode_interactions(seen_log, model.user_vocab, model.item_vocab, "drop", "drop")
            model.seen_items = seen.to_csr("binary")
    test = parts.get("test")
    if training_args.do_test and test is not None and len(test):
        test_metrics = trainer.evaluate(test)
        summary["test"] = {k.replace("eval/", ""): v for k, v in test_metrics.items()}
        record_evaluation(model, {k: v for k, v in summary["test"].items() if "@" in k}, split="test")
    if acc.is_main_process:
        record_dataset(model, train_log, name=data_name, split=data_args.split)
        model.save_pretrained(out)
        (out / "train_results.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
        plot = plot_history(history, out / "training_curves.png", metric=training_args.metric_for_best_model)
        brief = {k: v for k, v in summary.items() if k != "history"}
        print(json.dumps(brief, default=str))
        print(f"model, train_results.json (per-epoch history){' and ' + plot.name if plot else ''} -> {out}")
    trainer.close()
    return summary


__all__ = ["build_model", "item_text_embeddings", "load_training_data", "run_train"]
