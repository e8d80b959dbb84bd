"""The transformers pipeline task ``"recommendation"``: top-K items for a user id, a list of users, or an item
history (a user unseen in training), with scores and, when an item catalogue is attached, titles.

Call :func:`register_pipeline` once (``import hf_recsys`` does it), then::

    from transformers import pipeline

    recommender = pipeline("recommendation", model="org/movielens-most-popular", item_catalogue=movies)
    recommender(42, top_k=5)                      # one user  -> [{"item_id", "score", "title"}, ...]
    recommender([42, 7], top_k=5)                 # users     -> one list per user
    recommender({"history": [1, 260, 1196]})      # cold user -> from the item history
    recommender({"similar_to": 1})                # the items most similar to item 1
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from transformers import Pipeline

TASK = "recommendation"
_HISTORY_USER = "__history_{}__"


def _py(value: Any) -> Any:
    """A plain Python value that ``json.dumps`` takes: numpy scalars and arrays, and missing values, converted."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_py(v) for v in value]
    if isinstance(value, Mapping):
        return {_py(k): _py(v) for k, v in value.items()}
    if hasattr(value, "isoformat"):  # pandas / datetime timestamps
        return value.isoformat()
    try:
        import pandas as pd

        if pd.api.types.is_scalar(value) and pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return value


_PIPELINE_HINT = "Pass {'user_id': ..., 'history': [item ids]} to recommend for a user unseen in training."


def catalogue_lookup(item_catalogue: Any, item_column: str = "item_id") -> dict[Any, dict[str, Any]]:
    """``{item_id: {column: value}}`` from an item catalogue.

    Args:
        item_catalogue: a pandas DataFrame, ``datasets.Dataset`` or pyarrow Table with an ``item_column`` and
            content columns (``title``, ``genres``, ...); or a mapping ``{item_id: title}`` /
            ``{item_id: {column: value}}``.
        item_column: the column holding the item ids.

    Returns:
        The lookup used to decorate recommendations.
    """
    if isinstance(item_catalogue, Mapping):
        return {k: (dict(v) if isinstance(v, Mapping) else {"title": v}) for k, v in item_catalogue.items()}
    if hasattr(item_catalogue, "to_pandas") and not hasattr(item_catalogue, "iloc"):
        item_catalogue = item_catalogue.to_pandas()
    if item_column not in item_catalogue.columns:
        raise ValueError(
            f"The item catalogue has no {item_column!r} column (columns: {list(item_catalogue.columns)}); "
            "pass item_column= to name the id column."
        )
    frame = item_catalogue.drop_duplicates(item_column).set_index(item_column)
    return {_py(k): {c: _py(v) for c, v in row.items()} for k, row in zip(frame.index, frame.to_dict("records"))}


class RecommendationPipeline(Pipeline):
    """Recommend items with any hf-recsys model.

    Inputs (the first argument):
        - a user id -> a list of ``{"item_id", "score", ...}`` dicts, best first;
        - a list of user ids -> one such list per user (scored as one batch);
        - ``{"history": [item ids]}`` (optionally with ``"user_id"``) -> recommendations for a user unseen in
          training, from the items they interacted with (models with ``supports_history``); a list of such dicts
          gives one list each;
        - ``{"similar_to": item_id}`` -> the items most similar to that item (models with ``item_similarity``).

    Every answer is plain Python (``json.dumps`` takes it): catalogue values such as genre arrays become lists.

    Parameters (at construction or per call):
        top_k: items per user (default 10).
        exclude_seen: leave out items the user interacted with (default ``True``).
        items: restrict the ranking to these candidate item ids.
        item_catalogue: item content (DataFrame / Dataset / mapping, see :func:`catalogue_lookup`); its columns
            (``title``, ...) are added to each recommended item.
        item_column: the id column of the catalogue (default ``"item_id"``).
        ignore_unknown_items: drop history items the model does not know instead of raising (default ``False``);
            the pipeline logs how many were dropped.

    Example:
        ```python
        >>> import hf_recsys
        >>> from transformers import pipeline
        >>> recommender = pipeline("recommendation", model=model, item_catalogue=movies)  # doctest: +SKIP
        >>> recommender(1, top_k=3)  # doctest: +SKIP
        [{'item_id': 356, 'score': 329.0, 'title': 'Forrest Gump (1994)'}, ...]
        ```
    """

    _load_tokenizer = False
    _load_image_processor = False
    _load_video_processor = False
    _load_feature_extractor = False
    _load_processor = False

    def __call__(self, inputs: Any = None, **kwargs: Any) -> list:
        """Top-K recommendations; see the class docstring for the input kinds."""
        if inputs is None and "history" in kwargs:
            inputs = {"history": kwargs.pop("history"), "user_id": kwargs.pop("user_id", None)}
        if inputs is None:
            raise ValueError("Give a user id, a list of user ids, or {'history': [item ids]} to recommend for.")
        single = isinstance(inputs, Mapping) or not isinstance(inputs, (list, tuple, np.ndarray))
        request = {"requests": [inputs] if single else list(inputs)}
        out = super().__call__(request, **kwargs)
        return out[0] if single else out

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        exclude_seen: bool | None = None,
        items: Sequence[Any] | None = None,
        item_catalogue: Any = None,
        item_column: str | None = None,
        ignore_unknown_items: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            raise TypeError(f"Unknown argument(s) for the recommendation pipeline: {', '.join(kwargs)}.")
        options = (("k", top_k), ("exclude_seen", exclude_seen), ("items", items))
        forward = {k: v for k, v in (*options, ("ignore_unknown_items", ignore_unknown_items)) if v is not None}
        if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
            raise ValueError(f"top_k must be a positive int, got {top_k!r}.")
        post = {}
        if item_catalogue is not None:
            post["catalogue"] = catalogue_lookup(item_catalogue, item_column or "item_id")
        return {}, forward, post

    def preprocess(self, inputs: dict) -> dict:
        users, histories, similar = [], [], {}
        for j, req in enumerate(inputs["requests"]):
            if isinstance(req, Mapping) and "similar_to" in req:
                similar[j] = _py(req["similar_to"])
                continue
            if isinstance(req, Mapping):
                if "history" not in req and "user_id" not in req:
                    raise ValueError(
                        f"A dict input needs a 'history' (item ids), a 'user_id' or 'similar_to' (an item id); got "
                        f"{list(req)}."
                    )
                user = req.get("user_id")
                users.append(_HISTORY_USER.format(j) if user is None else _py(user))
                histories.append([_py(i) for i in req["history"]] if req.get("history") is not None else None)
            else:
                users.append(_py(req))
                histories.append(None)
        has_history = any(h is not None for h in histories)
        return {"users": users, "histories": histories if has_history else None, "similar": similar}

    def _forward(
        self,
        model_inputs: dict,
        k: int = 10,
        exclude_seen: bool = True,
        items: Any = None,
        ignore_unknown_items: bool = False,
    ) -> dict:
        import logging

        from .data.vocab import UnknownIdError

        rows: dict[int, tuple] = {}
        similar = model_inputs["similar"]
        if similar:
            ids, scores = self.model.similar_items(list(similar.values()), k=k)
            rows.update({j: (ids[r], scores[r]) for r, j in enumerate(similar)})
        if model_inputs["users"]:
            try:
                recs = self.model.recommend(
                    model_inputs["users"],
                    k=k,
                    exclude_seen=exclude_seen,
                    items=items,
                    histories=model_inputs["histories"],
                    ignore_unknown_items=ignore_unknown_items,
                )
            except UnknownIdError as exc:
                if exc.kind == "user" and self.model.supports_history:
                    raise UnknownIdError("user", exc.ids, _PIPELINE_HINT) from None
                raise
            if recs.num_ignored_items:
                logging.getLogger(__name__).warning(
                    "ignored %d history item(s) the model does not know", recs.num_ignored_items
                )
            others = [j for j in range(len(similar) + len(model_inputs["users"])) if j not in similar]
            rows.update({j: (recs.item_ids[r], recs.scores[r]) for r, j in enumerate(others)})
        order = sorted(rows)
        return {"ids": [rows[j][0] for j in order], "scores": [rows[j][1] for j in order]}

    def postprocess(self, model_outputs: dict, catalogue: Mapping | None = None) -> list[list[dict[str, Any]]]:
        results = []
        for ids, scores in zip(model_outputs["ids"], model_outputs["scores"]):
            keep = np.isfinite(scores)  # -inf marks filler when fewer than k items are eligible
            row = [{"item_id": _py(i), "score": float(s)} for i, s in zip(ids[keep], scores[keep])]
            if catalogue is not None:
                for rec in row:
                    rec.update({c: _py(v) for c, v in catalogue.get(rec["item_id"], {}).items()})
            results.append(row)
        return results


class _CheckedLoader:
    """What ``pipeline("recommendation", model="org/name")`` loads a repo id or folder with: the checked loader."""

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str, **kwargs: Any):
        from .auto import check_model_path
        from .hub import load_model

        check_model_path(pretrained_model_name_or_path)
        kwargs.pop("_from_pipeline", None)
        kwargs.pop("config", None)
        if kwargs.get("dtype") == "auto":
            kwargs.pop("dtype")
        return load_model(pretrained_model_name_or_path, **kwargs)


def register_pipeline() -> None:
    """Register the ``"recommendation"`` task with ``transformers.pipeline`` (idempotent).

    Example:
        ```python
        >>> from hf_recsys.pipelines import register_pipeline
        >>> register_pipeline()
        >>> from transformers import pipeline
        >>> recommender = pipeline("recommendation", model="org/movielens-most-popular")  # doctest: +SKIP
        ```
    """
    from transformers.pipelines import PIPELINE_REGISTRY

    if PIPELINE_REGISTRY.supported_tasks.get(TASK, {}).get("impl") is RecommendationPipeline:
        return
    PIPELINE_REGISTRY.register_pipeline(TASK, pipeline_class=RecommendationPipeline, pt_model=_CheckedLoader)


__all__ = ["TASK", "RecommendationPipeline", "catalogue_lookup", "register_pipeline"]
