"""The Hugging Face Hub: model cards from ``model_cards/`` templates, complete-or-nothing pushes and checked loads.

- :func:`build_model_card` fills a Jinja template (no logic in it) with what the model, its config and an
  evaluation record: family, paper, backbone and adapter, training data, hyper-parameters, the evaluation table
  with its protocol, a usage snippet and the limits. Metadata goes through ``huggingface_hub.ModelCardData``, so
  the YAML front matter carries ``library_name: hf-recsys``, tags and a ``model-index`` with the metrics.
- :func:`push_to_hub` uploads weights, config, id vocabularies, seen items, the card and a file manifest in **one
  commit**: the Hub applies a commit entirely or not at all, so a push that fails half-way publishes nothing.
- ``save_pretrained`` records every file of the model with its size and sha256 in ``config.json``
  (:mod:`hf_recsys.serialization`);
  :func:`verify_checkpoint` refuses a folder or repo where one is missing or differs (an upload that stopped
  half-way, files from two different saves), and :func:`load_model` loads by repo id after that check, pinned to
  one commit.
- :func:`push_interactions` / :func:`load_interactions_from_hub` move interaction logs and item catalogues as Hub
  datasets with the canonical column names.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .serialization import (
    CARD_FILE,
    MANIFEST_KEY,
    IncompleteCheckpointError,
    UnsafeCheckpointError,
    saved_model_type,
    verify_checkpoint,
    write_config_manifest,
)

logger = logging.getLogger(__name__)

#: Remote files a push replaces (stale shards or indices of an earlier push must not linger beside the new ones).
_REPLACED_ON_PUSH = ["*.safetensors", "*.json", "*.bin"]
#: Config keys that are bookkeeping, not hyper-parameters.
_NOT_HYPERPARAMETERS = {
    "architectures", "dataset_info", "dtype", "evaluation", "model_type", "num_items", "num_users", "torch_dtype",
    "training_args", "transformers_version", MANIFEST_KEY,
}  # fmt: skip
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")
_CANONICAL = ("user_id", "item_id", "rating", "timestamp")


def write_manifest(save_directory: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Record every file of a saved model folder (but ``config.json`` and ``README.md``) with its size and sha256 in
    ``config.json`` under ``"hf_recsys_files"`` (:func:`hf_recsys.serialization.write_config_manifest`).

    ``save_pretrained`` already does this on the folder it stages, which holds only the model's files; call this only
    on a folder you assembled yourself.

    Returns:
        The manifest, ``{relative path: {"size": int, "sha256": str}}``.
    """
    return write_config_manifest(save_directory)


def _pin_revision(repo_id: str, hub_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Resolve a branch to its commit sha once, so that every file is read from the same commit."""
    if os.path.isdir(repo_id) or hub_kwargs.get("local_files_only"):
        return hub_kwargs
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HFValidationError, OfflineModeIsEnabled

    try:
        info = HfApi().model_info(repo_id, revision=hub_kwargs.get("revision"), token=hub_kwargs.get("token"))
    except (OfflineModeIsEnabled, HFValidationError):  # offline with a cache, or a path that is no repo id:
        return hub_kwargs  # transformers reports those itself
    return {**hub_kwargs, "revision": info.sha}


def load_model(pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
    """Load any hf-recsys model from a folder or a Hub repo id, after checking it is complete.

    A branch (``revision="main"`` by default) is resolved to one commit first, so a push landing meanwhile cannot
    mix files of two versions.

    Args:
        pretrained_model_name_or_path: a folder or a Hub repo id (``"org/name"``).
        **kwargs: ``revision``, ``token``, ``cache_dir``, ... and options for ``from_pretrained``.

    Returns:
        The model, with its id vocabularies.

    Raises:
        huggingface_hub.errors.RepositoryNotFoundError: no such repo (or a private one without a token).
        huggingface_hub.errors.RevisionNotFoundError: no such branch, tag or commit.
        IncompleteCheckpointError: files are missing or differ from the manifest.

    Example:
        ```python
        >>> from hf_recsys.hub import load_model
        >>> model = load_model("org/movielens-most-popular", revision="main")  # doctest: +SKIP
        >>> item_ids, scores = model.recommend([1, 2], k=10)  # doctest: +SKIP
        ```
    """
    from .registry import get_model_spec

    path = str(pretrained_model_name_or_path)
    hub = _pin_revision(path, {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs})
    # from_pretrained verifies the manifest before reading any weight (RecPreTrainedModel.from_pretrained)
    return get_model_spec(saved_model_type(path, hub)).model_class.from_pretrained(path, **{**kwargs, **hub})


# ---------------------------------------------------------------------------------------------- model cards
def templates_dir() -> Path:
    """Folder of the model-card templates (``model_cards/`` beside the package)."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "model_cards", here.parents[1] / "model_cards"):
        if (candidate / "default.md").is_file():
            return candidate
    raise FileNotFoundError("hf-recsys model-card templates not found (model_cards/default.md beside the package).")


def _template_for(model: Any, template_path: str | os.PathLike | None) -> Path:
    if template_path is not None:
        return Path(template_path)
    own = getattr(type(model), "model_card_template", None)  # a plugin ships its own template
    if own:
        return Path(own)
    family = templates_dir() / f"{model.config.model_type}.md"
    return family if family.is_file() else templates_dir() / "default.md"


def _summary(model: Any) -> str:
    doc = inspect.getdoc(type(model)) or ""
    return " ".join(doc.split("\n\n")[0].split()) or f"A {model.config.model_type} recommender."


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, (dict, list, tuple, bool)) or value is None else str(value)


def _hyperparameters(config: Any) -> list[dict[str, str]]:
    from .configuration_utils import RecConfig

    base = set(RecConfig().to_dict())
    own = {k: v for k, v in config.to_dict().items() if k not in base and k not in _NOT_HYPERPARAMETERS}
    return [{"name": k, "value": _fmt(v)} for k, v in sorted(own.items()) if not k.startswith("_")]


def _base_model(config: Any) -> str | None:
    for name in ("base_model", "backbone_name_or_path"):
        value = getattr(config, name, None)
        if value:
            return str(value)
    return None


def _adapter(config: Any) -> dict[str, str] | None:
    if not getattr(config, "use_lora", False):
        return None
    targets = getattr(config, "lora_target_modules", None) or "chosen from the backbone type"
    return {
        "method": "LoRA (peft)",
        "rank": _fmt(getattr(config, "lora_r", None)),
        "alpha": _fmt(getattr(config, "lora_alpha", None)),
        "target_modules": _fmt(targets) if not isinstance(targets, str) else targets,
    }


def _evaluation(eval_results: Any) -> dict[str, Any] | None:
    """Normalise an ``EvaluationResult``, its ``to_dict()``, or a plain ``{metric: value}`` mapping."""
    if eval_results is None:
        return None
    if hasattr(eval_results, "to_dict"):
        eval_results = eval_results.to_dict()
    if "summary" not in eval_results:
        eval_results = {"summary": dict(eval_results)}
    out = dict(eval_results)
    out["summary"] = {k: float(v) for k, v in eval_results["summary"].items()}
    out.setdefault("protocol", "not recorded")
    return out


def record_evaluation(model: Any, eval_results: Any, split: str = "test") -> None:
    """Keep an evaluation with the model (``config.evaluation``), so that its card shows the metrics after any
    later save or push.

    Args:
        model: the evaluated model.
        eval_results: an ``EvaluationResult`` (``hf_recsys.evaluation``), its ``to_dict()``, or ``{metric: value}``.
        split: the name of the evaluated split.

    Example:
        ```python
        >>> result = evaluate_model(model, train, test, ks=(10, 20))  # doctest: +SKIP
        >>> record_evaluation(model, result)  # doctest: +SKIP
        ```
    """
    ev = _evaluation(eval_results)
    ev.setdefault("split", split)
    model.config.evaluation = ev


def record_dataset(
    model: Any, data: Any, *, name: str | None = None, hub_id: str | None = None, **facts: Any
) -> dict[str, Any]:
    """Keep the facts of the training data with the model (``config.dataset_info``) for its card.

    Args:
        model: the model trained on ``data``.
        data: the training log (``datasets.Dataset``, pandas DataFrame or pyarrow Table with canonical columns).
        name: a readable name of the data set.
        hub_id: its Hub dataset id, if it has one (goes into the card's ``datasets`` metadata).
        **facts: more facts to show, e.g. ``split="leave-last-out, 1 test item per user"``.

    Returns:
        The recorded facts: name, Hub id, interactions, distinct users and items, first and last timestamp.

    Example:
        ```python
        >>> record_dataset(model, train, name="MovieLens ml-latest-small", split="leave-last-out")  # doctest: +SKIP
        ```
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = data.data.table if hasattr(data, "data") and hasattr(data.data, "table") else data
    if not isinstance(table, pa.Table):
        table = pa.Table.from_pandas(table, preserve_index=False)
    info: dict[str, Any] = {"name": name, "hub_id": hub_id, "num_interactions": table.num_rows}
    for col, key in (("user_id", "num_users"), ("item_id", "num_items")):
        info[key] = len(pc.unique(table.column(col)))
    if "timestamp" in table.column_names and table.num_rows:
        lo, hi = pc.min_max(table.column("timestamp")).values()
        info["time_span"] = f"{_iso(lo.as_py())} to {_iso(hi.as_py())}"
    info.update(facts)
    model.config.dataset_info = {k: v for k, v in info.items() if v is not None}
    return model.config.dataset_info


def _iso(seconds: Any) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(int(seconds), tz=timezone.utc).strftime("%Y-%m-%d")


def _dataset_facts(config: Any) -> tuple[dict[str, Any], list[dict[str, str]]]:
    info = dict(getattr(config, "dataset_info", None) or {})
    info.setdefault("num_users", config.num_users)
    info.setdefault("num_items", config.num_items)
    return info, [{"name": k, "value": _fmt(v)} for k, v in info.items()]


_METRIC_NAMES = {
    "ndcg": "NDCG", "recall": "Recall", "precision": "Precision", "hit_rate": "Hit rate", "map": "MAP", "mrr": "MRR",
    "coverage": "Catalogue coverage", "rmse": "RMSE", "mae": "MAE",
}  # fmt: skip


def _metric_name(metric: str) -> str:
    base, at, k = metric.partition("@")
    return _METRIC_NAMES.get(base, base) + (f"@{k}" if at else "")


def _eval_results_metadata(ev: dict[str, Any], info: dict[str, Any]) -> list:
    from huggingface_hub import EvalResult

    name = str(info.get("name") or info.get("hub_id") or "unknown")
    dataset_type = str(info.get("hub_id") or re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-"))
    return [
        EvalResult(
            task_type="recommendation",
            task_name="Recommendation",
            dataset_type=dataset_type,
            dataset_name=name,
            dataset_split=ev.get("split", "test"),
            metric_type=metric,
            metric_name=_metric_name(metric),
            metric_value=round(value, 6),
            metric_config=str(ev.get("protocol")),
        )
        for metric, value in ev["summary"].items()
    ]


def _py(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _example_ids(model: Any) -> tuple[str, str]:
    """Real ids from the vocabularies for the usage snippet (``repr``: strings quoted, ints bare)."""
    user, items = '"<user id>"', '["<item id>", "<item id>"]'
    if getattr(model, "user_vocab", None) is not None and len(model.user_vocab):
        user = repr(_py(model.user_vocab.decode([0])[0]))
    if getattr(model, "item_vocab", None) is not None and len(model.item_vocab) >= 2:
        items = repr([_py(x) for x in model.item_vocab.decode([0, 1])])
    return user, items


def _limitations(model: Any, ev: dict[str, Any] | None) -> list[str]:
    cfg = model.config
    out = list(getattr(type(model), "limitations", ()) or ())
    out.append(f"Only the {cfg.num_items} items of the training catalogue can be recommended.")
    if getattr(model, "supports_history", False):
        out.append(f"Users outside the {cfg.num_users} training users are served from an item history.")
    else:
        out.append(f"Only the {cfg.num_users} users seen in training can be served; unseen users raise an error.")
    if ev is not None and ev.get("sampled_negatives"):
        out.append("The metrics come from SAMPLED ranking; they are optimistic and not comparable to full ranking.")
    return out


def _install(model_type: str) -> str:
    try:
        from .registry import get_model_spec

        dist = get_model_spec(model_type).distribution
    except Exception:  # a model built outside the registry
        dist = None
    return "hf-recsys" if dist in (None, "hf-recsys") else f"hf-recsys {dist}"


def build_model_card(
    model: Any,
    eval_results: Any = None,
    *,
    repo_id: str | None = None,
    base_model: str | None = None,
    license: str | None = "apache-2.0",
    training: Mapping[str, Any] | None = None,
    template_path: str | os.PathLike | None = None,
    **template_kwargs: Any,
):
    """A Hub model card for a recommender, from a Jinja template in ``model_cards/`` and the recorded data.

    Args:
        model: the (fitted) model.
        eval_results: an ``EvaluationResult``, its ``to_dict()`` or ``{metric: value}``; default: what
            :func:`record_evaluation` kept in ``config.evaluation``.
        repo_id: the Hub repo the card is for (names the model and fills the usage snippet).
        base_model: Hub id of the backbone, when the config holds only a local path to it.
        license: the model's licence identifier.
        training: how the model was fitted or trained (epochs, learning rate, seed, ...); default:
            ``config.training_args`` when the training code recorded it.
        template_path: a template to use instead of ``model_cards/<model_type>.md`` / ``model_cards/default.md``.
        **template_kwargs: more template variables (they take precedence).

    Returns:
        A ``huggingface_hub.ModelCard`` (``.save(path)``, ``.push_to_hub(repo_id)``, ``.data``).

    Example:
        ```python
        >>> from hf_recsys.hub import build_model_card
        >>> card = build_model_card(model, result, repo_id="org/movielens-most-popular")  # doctest: +SKIP
        >>> card.data.library_name  # doctest: +SKIP
        'hf-recsys'
        ```
    """
    from huggingface_hub import ModelCard, ModelCardData

    cfg = model.config
    ev = _evaluation(eval_results if eval_results is not None else getattr(cfg, "evaluation", None))
    info, data_rows = _dataset_facts(cfg)
    backbone = base_model or _base_model(cfg)
    hub_backbone = backbone if backbone and _HUB_ID.match(backbone) and not os.path.exists(backbone) else None
    model_name = repo_id or f"hf-recsys-{cfg.model_type}"
    card_data = ModelCardData(
        library_name="hf-recsys",
        license=license,
        tags=["recommender-system", "hf-recsys", cfg.model_type] + (["lora", "peft"] if _adapter(cfg) else []),
        base_model=hub_backbone,
        datasets=[info["hub_id"]] if info.get("hub_id") else None,
        metrics=list(dict.fromkeys(m.partition("@")[0] for m in ev["summary"])) if ev else None,
        model_name=model_name,
        eval_results=_eval_results_metadata(ev, info) if ev else None,
    )
    user, items = _example_ids(model)
    variables = {
        "model_id": model_name,
        "repo_id": repo_id or "path/to/saved-model",
        "model_type": cfg.model_type,
        "model_class": type(model).__name__,
        "summary": _summary(model),
        "paper": getattr(type(model), "paper", None),
        "base_model": backbone,
        "adapter": _adapter(cfg),
        "hyperparameters": _hyperparameters(cfg),
        "training": [
            {"name": k, "value": _fmt(v)}
            for k, v in (training if training is not None else getattr(cfg, "training_args", None) or {}).items()
        ],
        "dataset_name": info.get("name"),
        "dataset_facts": data_rows,
        "evaluation": ev,
        "metric_rows": [
            {"name": _metric_name(k), "value": f"{v:.4f}"} for k, v in (ev or {}).get("summary", {}).items()
        ],
        "example_user": user,
        "example_history": items if getattr(model, "supports_history", False) else None,
        "install": _install(cfg.model_type),
        "limitations": _limitations(model, ev),
    }
    variables.update(template_kwargs)
    return ModelCard.from_template(card_data, template_path=str(_template_for(model, template_path)), **variables)


# ---------------------------------------------------------------------------------------------- push
def save_for_hub(model: Any, save_directory: str | os.PathLike, eval_results: Any = None, **card_kwargs: Any) -> str:
    """``save_pretrained`` plus the model card (``README.md``) and the file manifest: the folder a push uploads.

    Returns:
        ``save_directory``.
    """
    card = build_model_card(model, eval_results, **card_kwargs)
    return model.save_folder(save_directory, card=card)  # one atomic save; the manifest is written once


def push_to_hub(
    model: Any,
    repo_id: str,
    *,
    eval_results: Any = None,
    revision: str | None = None,
    private: bool | None = None,
    token: str | bool | None = None,
    commit_message: str | None = None,
    create_pr: bool = False,
    **card_kwargs: Any,
):
    """Push a recommender to the Hub in one commit: weights, config, id vocabularies, seen items, card, manifest.

    The Hub applies a commit entirely or not at all, so a push that fails half-way leaves the repo as it was;
    stale weight files of an earlier push are deleted in the same commit, and the commit names its parent, so
    two concurrent pushes cannot interleave.

    Args:
        model: the model to push.
        repo_id: ``"org/name"``; the repo is created if needed.
        eval_results: metrics for the card (see :func:`build_model_card`).
        revision: branch to push to (created from ``main`` if missing).
        private: create the repo private (ignored when it exists).
        token: Hub token (default: the logged-in one).
        commit_message: message of the commit.
        create_pr: open a pull request instead of committing to the branch.
        **card_kwargs: passed to :func:`build_model_card` (``license``, ``base_model``, template variables).

    Returns:
        ``huggingface_hub.CommitInfo`` of the commit (``.oid`` is the commit sha, usable as a ``revision``).

    Example:
        ```python
        >>> from hf_recsys.hub import push_to_hub
        >>> info = push_to_hub(model, "org/movielens-most-popular", eval_results=result)  # doctest: +SKIP
        >>> AutoModelForRecommendation.from_pretrained("org/movielens-most-popular")  # doctest: +SKIP
        ```
    """
    from huggingface_hub import HfApi

    from . import __version__

    api = HfApi(library_name="hf-recsys", library_version=__version__)
    repo_id = api.create_repo(repo_id, private=private, token=token, exist_ok=True).repo_id
    if revision is not None and not revision.startswith("refs/pr"):
        api.create_branch(repo_id, branch=revision, token=token, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_for_hub(model, tmp, eval_results, repo_id=repo_id, **card_kwargs)
        # create_commit, not upload_folder: with hf_xet installed, upload_folder commits large folders in several
        # parts, and a failure between two parts would publish half a model.
        info = api.model_info(repo_id, revision=revision, token=token)
        return api.create_commit(
            repo_id=repo_id,
            operations=_commit_operations(tmp, [s.rfilename for s in info.siblings or []]),
            revision=revision,
            token=token,
            commit_message=commit_message or f"Upload {type(model).__name__} ({model.config.model_type})",
            create_pr=create_pr,
            parent_commit=None if create_pr else info.sha,  # a concurrent push makes this one fail, not interleave
        )


def _commit_operations(folder: str, remote_files: list[str]) -> list:
    """Add every file of ``folder``; delete remote weights/configs of an earlier push that this one does not have."""
    from fnmatch import fnmatch

    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    local = sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())
    adds = [CommitOperationAdd(path_in_repo=f, path_or_fileobj=os.path.join(folder, f)) for f in local]
    stale = [f for f in remote_files if f not in local and any(fnmatch(f, pat) for pat in _REPLACED_ON_PUSH)]
    return adds + [CommitOperationDelete(path_in_repo=f) for f in stale]


# ---------------------------------------------------------------------------------------------- datasets
def push_interactions(data: Any, repo_id: str, *, split: str = "train", private: bool | None = None, **kwargs: Any):
    """Push an interaction log (or an item catalogue) as a Hub dataset.

    Args:
        data: a ``datasets.Dataset``, pandas DataFrame or pyarrow Table (canonical columns ``user_id``, ``item_id``,
            ``rating``, ``timestamp`` for a log; ``item_id`` plus content columns for a catalogue).
        repo_id: the dataset repo, ``"org/name"``.
        split: the split name.
        private: create the repo private.
        **kwargs: passed to ``datasets.Dataset.push_to_hub`` (``token``, ``revision``, ``commit_message``, ...).

    Returns:
        The ``CommitInfo`` of the upload.

    Example:
        ```python
        >>> push_interactions(ratings_df, "org/movielens-small")  # doctest: +SKIP
        ```
    """
    import datasets

    if not isinstance(data, datasets.Dataset):
        import pyarrow as pa

        table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        data = datasets.Dataset(table)
    if "item_id" not in data.column_names:
        raise ValueError(f"push_interactions needs an 'item_id' column; the data has {data.column_names}.")
    return data.push_to_hub(repo_id, split=split, private=private, **kwargs)


def load_interactions_from_hub(repo_id: str, *, split: str = "train", revision: str | None = None, **kwargs: Any):
    """Load an interaction log or item catalogue pushed with :func:`push_interactions`, as a ``datasets.Dataset``.

    Example:
        ```python
        >>> log = load_interactions_from_hub("org/movielens-small")  # doctest: +SKIP
        ```
    """
    import datasets

    ds = datasets.load_dataset(repo_id, split=split, revision=revision, **kwargs)
    if "item_id" not in ds.column_names:
        raise ValueError(
            f"{repo_id} has no 'item_id' column ({ds.column_names}); rename its columns to {', '.join(_CANONICAL)}."
        )
    return ds


__all__ = [
    "CARD_FILE",
    "MANIFEST_KEY",
    "IncompleteCheckpointError",
    "UnsafeCheckpointError",
    "build_model_card",
    "load_interactions_from_hub",
    "load_model",
    "push_interactions",
    "push_to_hub",
    "record_dataset",
    "record_evaluation",
    "save_for_hub",
    "templates_dir",
    "verify_checkpoint",
    "write_manifest",
]
