"""``FusionPreTrainedModel``: the base of every fusion model.

A fusion holds its member models **by value** in a plain dict (``self.members``), not as torch sub-modules: the
fusion's own ``model.safetensors`` holds only the fusion's parameters (member weights, a meta-model), and each
member is written by its own ``write_model_files`` into ``members/<name>/`` (loadable on its own with
``AutoModelForRecommendation.from_pretrained``). Nothing is written twice, ``fusion.parameters()`` lists only the
fusion's parameters (a Trainer would never touch member weights), and ``fusion.to(device)`` moves members too.

Vocabularies: the fusion's item vocabulary is the **union** of the members' item vocabularies (the first member's
items in its order, then every other member's new items appended), and likewise for users. Each member scores in
its own index space; its scores are aligned to the fusion's items through the ids, and items a member does not
know (or users it cannot score) count as "no opinion" for that member.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.auto import AutoModelForRecommendation
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import build_vocabs, encode_interactions
from hf_recsys.evaluation.metrics import ranking_metrics_from_hits
from hf_recsys.modeling_utils import NotFittedError, RecPreTrainedModel
from torch import nn
from tqdm.auto import tqdm

from .configuration_fusion import FusionConfig

logger = logging.getLogger(__name__)

MEMBERS_DIR = "members"


class MemberLoadError(OSError):
    """A fusion member could not be loaded from its sub-folder."""


@dataclass
class FusionBatch:
    """Member scores of a batch of users, aligned to the fusion's items.

    Args:
        scores: one float64 tensor ``(batch, num_items)`` per member, NaN where the member has no opinion (item
            unknown to it, or a user it cannot score).
        seen: bool ``(batch, num_items)``, the items each user has already interacted with.
        activity: float64 ``(batch,)``, each user's number of distinct seen items.
    """

    scores: list[torch.Tensor]
    seen: torch.Tensor
    activity: torch.Tensor

    def eligible(self, member: int) -> torch.Tensor:
        """Items the member scored and the user has not seen, bool ``(batch, num_items)``."""
        return ~torch.isnan(self.scores[member]) & ~self.seen


def normalize(scores: torch.Tensor, eligible: torch.Tensor, method: str) -> torch.Tensor:
    """Per-row normalisation of ``scores`` over the ``eligible`` entries; other entries get the row's lowest
    normalised value (0 for ``minmax``/``rank``), so an item a member cannot score ranks last for that member.

    Formulas follow ranx: ``minmax`` ``(s - min) / max(max - min, 1e-9)``; ``zscore`` ``(s - mean) / max(std,
    1e-9)`` with the population standard deviation; ``rank`` ``1 - i / n`` for the item at 0-based rank ``i`` of
    ``n``; ``none`` leaves scores as they are.
    """
    s = scores.to(torch.float64)
    n = eligible.sum(1, keepdim=True)
    safe_n = n.clamp(min=1)
    if method == "rank":
        order = torch.argsort(s.masked_fill(~eligible, -torch.inf), dim=1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(s.shape[1], device=s.device).expand_as(order).contiguous())
        out = 1.0 - ranks.to(torch.float64) / safe_n
        return out.masked_fill(~eligible, 0.0)
    low = s.masked_fill(~eligible, torch.inf).amin(1, keepdim=True)
    if method == "minmax":
        high = s.masked_fill(~eligible, -torch.inf).amax(1, keepdim=True)
        out = (s - low) / (high - low).clamp(min=1e-9)
    elif method == "zscore":
        mean = s.masked_fill(~eligible, 0.0).sum(1, keepdim=True) / safe_n
        var = ((s - mean).masked_fill(~eligible, 0.0) ** 2).sum(1, keepdim=True) / safe_n
        std = var.sqrt().clamp(min=1e-9)
        out, low = (s - mean) / std, (low - mean) / std
    else:
        out = s
    fill = torch.where(n > 0, low, torch.zeros_like(low))
    return torch.where(eligible, out, fill.expand_as(out))


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@20"`` -> ``("ndcg", 20)``."""
    name, _, k = metric.partition("@")
    if not k.isdigit() or name not in ("hit_rate", "precision", "recall", "ndcg", "map", "mrr"):
        raise ValueError(
            f"metric must look like 'ndcg@20' (hit_rate, precision, recall, ndcg, map, mrr), got {metric!r}."
        )
    return name, int(k)


@dataclass
class ValidationCache:
    """What ``tune`` needs, computed once: the fusion batches of the validation users and their relevant items."""

    batches: list[FusionBatch]
    relevant: list[torch.Tensor]
    num_relevant: list[torch.Tensor]


class FusionPreTrainedModel(RecPreTrainedModel):
    """Base class of the fusion models: members by value, union vocabularies, member sub-folders on save.

    Subclasses implement ``fuse(batch: FusionBatch) -> (batch, num_items)`` scores and, where something is learnt
    on validation data, ``_tune(cache, metric, show_progress)``.
    """

    config_class = FusionConfig
    base_model_prefix = "fusion"
    trainable = False
    supports_history = True

    def __init__(self, config: FusionConfig):
        super().__init__(config)
        self.members: dict[str, RecPreTrainedModel] = {
            spec["name"]: AutoModelForRecommendation.for_model(
                spec["model_type"], **{k: v for k, v in spec.items() if k not in ("name", "model_type")}
            )
            for spec in config.members
        }
        weights = config.weights if config.weights is not None else [1.0] * len(config.members)
        # the fusion's own parameter (a model with no parameter cannot be saved), frozen like every fitted model
        self.fusion_weights = nn.Parameter(torch.tensor(weights, dtype=torch.float32), requires_grad=False)
        self._align: dict[str, tuple[np.ndarray, torch.Tensor]] | None = None
        self._refresh_history_support()
        self.post_init()

    # ------------------------------------------------------------------ building from members
    @classmethod
    def from_members(
        cls, members: Mapping[str, RecPreTrainedModel] | Sequence[RecPreTrainedModel], **config_kwargs: Any
    ) -> FusionPreTrainedModel:
        """A fusion of already fitted models.

        Args:
            members: ``{name: model}``, or a list of models (named after their ``model_type``, ``_2``, ``_3``...
                appended on repeats). The models are held by value, not copied.
            **config_kwargs: options of the fusion's config (``weights``, ``normalization``, ...).

        Returns:
            The fusion, with the union of the members' vocabularies and seen items.

        Example:
            ```python
            >>> fusion = WeightedFusion.from_members({"ease": ease, "als": als})  # doctest: +SKIP
            >>> ids, scores = fusion.recommend(["u1"], k=10)  # doctest: +SKIP
            ```
        """
        if not isinstance(members, Mapping):
            named: dict[str, RecPreTrainedModel] = {}
            for m in members:
                base = m.config.model_type
                name, j = base, 1
                while name in named:
                    j += 1
                    name = f"{base}_{j}"
                named[name] = m
            members = named
        specs = [{"name": n, "model_type": m.config.model_type} for n, m in members.items()]
        model = cls(cls.config_class(members=specs, **config_kwargs))
        model.members = dict(members)
        model._sync_from_members()
        return model

    def _refresh_history_support(self) -> None:
        self.supports_history = bool(self.members) and all(m.supports_history for m in self.members.values())

    def _sync_from_members(self) -> None:
        """Union vocabularies, sizes and seen items from the (fitted) members."""
        for name, m in self.members.items():
            if m.user_vocab is None or m.item_vocab is None:
                raise NotFittedError(f"Fusion member {name!r} ({m.config.model_type}) is not fitted: fit it first.")
        users = items = None
        for name, m in self.members.items():
            try:
                users = m.user_vocab if users is None else users.extend(m.user_vocab.ids)
                items = m.item_vocab if items is None else items.extend(m.item_vocab.ids)
            except (TypeError, ValueError) as exc:
                raise TypeError(f"Fusion member {name!r} uses ids of another type than the others: {exc}") from exc
        self.set_vocabs(users, items)
        self._align = None
        self.seen_items = self._union_seen()
        self._refresh_history_support()

    def _union_seen(self) -> sp.csr_matrix | None:
        parts = []
        for m in self.members.values():
            if m.seen_items is None:
                continue
            coo = m.seen_items.tocoo()
            rows = self.user_vocab.encode(m.user_vocab.ids)[coo.row]
            cols = self.item_vocab.encode(m.item_vocab.ids)[coo.col]
            parts.append((rows, cols))
        if not parts:
            return None
        rows, cols = (np.concatenate(x) for x in zip(*parts))
        seen = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (rows, cols)), shape=(len(self.user_vocab), len(self.item_vocab))
        )
        seen.sum_duplicates()
        seen.data[:] = 1
        return seen

    def alignment(self, name: str) -> tuple[np.ndarray, torch.Tensor]:
        """``(user_map, item_map)`` of a member: for each fusion user / item, the member's index or -1."""
        if self._align is None:
            self._require_vocab()
            self._align = {}
            for n, m in self.members.items():
                user_map = m.user_vocab.encode(self.user_vocab.ids, unknown="mask")
                item_map = torch.as_tensor(m.item_vocab.encode(self.item_vocab.ids, unknown="mask"))
                self._align[n] = (user_map, item_map)
        return self._align[name]

    # ------------------------------------------------------------------ fitting and tuning
    def fit(
        self,
        data: Any,
        validation: Any = None,
        show_progress: bool = True,
        member_fit_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        **tune_kwargs: Any,
    ) -> FusionPreTrainedModel:
        """Fit every member on ``data`` (then tune the fusion on ``validation`` if given).

        Each member is refitted with the users of ``data`` and its own item vocabulary extended by the items of
        ``data`` (so a content member keeps the items it knows only from their features).

        Args:
            data: the training log (canonical columns).
            validation: a later log of the same users, on which ``tune`` fits the fusion's weights / meta-model.
                Never pass the test split.
            show_progress: progress bars.
            member_fit_kwargs: ``{member name: fit kwargs}`` for members that need more than the log.
            **tune_kwargs: passed to :meth:`tune`.

        Returns:
            The fusion itself.
        """
        if len(data) == 0:
            raise ValueError("Cannot fit on an empty interaction log.")
        user_vocab, item_vocab = build_vocabs(data)
        extra = dict(member_fit_kwargs or {})
        unknown = sorted(set(extra) - set(self.members))
        if unknown:
            raise ValueError(f"member_fit_kwargs names unknown members {unknown}; members: {list(self.members)}.")
        for name, m in tqdm(self.members.items(), desc="fitting members", disable=not show_progress):
            iv = item_vocab if m.item_vocab is None else m.item_vocab.extend(item_vocab.ids)
            m.fit(data, user_vocab=user_vocab, item_vocab=iv, show_progress=show_progress, **extra.get(name, {}))
        self._sync_from_members()
        self.seen_items = encode_interactions(data, self.user_vocab, self.item_vocab).to_csr("binary")
        if validation is not None:
            self.tune(validation, show_progress=show_progress, **tune_kwargs)
        return self

    def partial_fit(
        self, interactions: Any, member_options: Mapping[str, Mapping[str, Any]] | None = None, **options: Any
    ) -> FusionPreTrainedModel:
        """Pass the update to every member (``member.partial_fit(interactions, **options, **member_options[name])``),
        then take the union of their vocabularies and seen items; what the fusion tuned (weights, meta-model)
        stays. The log is checked against every member first, so a bad log changes none of them.

        Returns:
            The fusion itself.
        """
        from hf_recsys.online import check_update_log

        extra = dict(member_options or {})
        unknown = sorted(set(extra) - set(self.members))
        if unknown:
            raise ValueError(f"member_options names unknown members {unknown}; members: {list(self.members)}.")
        for m in self.members.values():
            check_update_log(m, interactions)
        for name, m in self.members.items():
            m.partial_fit(interactions, **options, **extra.get(name, {}))
        self._sync_from_members()
        return self

    def tune(self, validation: Any, metric: str = "ndcg@20", show_progress: bool = True, **kwargs: Any) -> dict:
        """Fit what the fusion learns (weights, meta-model, thresholds) on a validation log, the members fixed.

        Args:
            validation: interactions later than the members' training data (canonical columns); its items are
                the relevant items; items each user has in the members' training data are masked. A
                :class:`ValidationCache` from :meth:`validation_cache` is accepted too (fusions of the same members
                share one).
            metric: the validation metric to maximise, e.g. ``"ndcg@20"``.
            show_progress: progress bars.
            **kwargs: options of the fusion kind (e.g. the weight grid).

        Returns:
            A dict of what was chosen and the validation metric reached.
        """
        if isinstance(validation, ValidationCache):
            cache = validation
        else:
            cache = self.validation_cache(validation, show_progress=show_progress)
        return self._tune(cache, metric, show_progress=show_progress, **kwargs)

    def _tune(self, cache: ValidationCache, metric: str, show_progress: bool = True, **kwargs: Any) -> dict:
        raise NotImplementedError(f"{type(self).__name__} has nothing to tune.")

    def validation_cache(self, validation: Any, batch_size: int = 1024, show_progress: bool = True) -> ValidationCache:
        """Member scores of every validation user (computed once) and their relevant items."""
        self._require_vocab()
        inter = encode_interactions(
            validation, self.user_vocab, self.item_vocab, unknown_users="drop", unknown_items="mask"
        )
        users, row = unique(inter.user_idx, return_inverse=True)
        n = self.config.num_items
        codes = np.where(inter.item_idx >= 0, inter.item_idx, n + np.arange(len(inter.item_idx)))  # unknown: a miss
        width = n + len(codes)
        pairs = unique(row.astype(np.int64) * width + codes)
        p_row, p_code = pairs // width, pairs % width
        known = p_code < n
        rel = sp.csr_matrix((np.ones(known.sum(), np.float32), (p_row[known], p_code[known])), shape=(len(users), n))
        n_rel = np.bincount(p_row, minlength=len(users))
        batches, rels, nrels = [], [], []
        for start in tqdm(range(0, len(users), batch_size), desc="scoring validation", disable=not show_progress):
            sl = slice(start, start + batch_size)
            batches.append(self.member_batch(torch.as_tensor(users[sl])))
            rels.append(torch.as_tensor(rel[sl].toarray() > 0))
            nrels.append(torch.as_tensor(n_rel[sl]))
        return ValidationCache(batches, rels, nrels)

    def validation_metric(self, cache: ValidationCache, metric: str, fuse=None) -> float:
        """Mean of ``metric`` over the cached validation users for the fusion's current settings."""
        name, k = parse_metric(metric)
        fuse = fuse or self.fuse
        values = []
        for batch, rel, n_rel in zip(cache.batches, cache.relevant, cache.num_relevant):
            scores = fuse(batch).masked_fill(batch.seen, -torch.inf)
            top_s, top_i = torch.topk(scores, min(k, scores.shape[1]), dim=1)
            hits = rel.gather(1, top_i) & torch.isfinite(top_s)
            values.append(ranking_metrics_from_hits(hits, n_rel, [k], [name])[metric])
        return float(torch.cat(values).mean()) if values else float("nan")

    # ------------------------------------------------------------------ scoring
    def _member_history_scores(self, name: str, m: RecPreTrainedModel, hist: sp.csr_matrix) -> torch.Tensor | None:
        if not m.supports_history:
            return None
        item_map = self.alignment(name)[1].numpy()
        coo = hist.tocoo()
        cols = item_map[coo.col]
        keep = cols >= 0
        mh = sp.csr_matrix(
            (np.ones(keep.sum(), np.float32), (coo.row[keep], cols[keep])), shape=(hist.shape[0], m.config.num_items)
        )
        return m.score_histories(mh)

    def _member_scores(self, name: str, user_idx: np.ndarray | None, hist: sp.csr_matrix) -> torch.Tensor:
        """One member's scores of a batch, aligned to the fusion's items (NaN = no opinion), float64."""
        m = self.members[name]
        user_map, item_map = self.alignment(name)
        b = hist.shape[0]
        raw = torch.full((b, m.config.num_items), torch.nan, dtype=torch.float64)
        mu = user_map[user_idx] if user_idx is not None else np.full(b, -1)
        known = np.flatnonzero(mu >= 0)
        if len(known):
            raw[torch.as_tensor(known)] = m.score_users(torch.as_tensor(mu[known], device=m.device)).cpu().double()
        cold = np.flatnonzero(mu < 0)
        if len(cold):
            s = self._member_history_scores(name, m, hist[cold])
            if s is not None:
                raw[torch.as_tensor(cold)] = s.cpu().double()
        out = torch.full((b, len(item_map)), torch.nan, dtype=torch.float64)
        has = item_map >= 0
        out[:, has] = raw[:, item_map[has]]
        return out

    def member_batch(
        self, user_idx: torch.LongTensor | None = None, histories: sp.csr_matrix | None = None
    ) -> FusionBatch:
        """Every member's aligned scores for known users (``user_idx``) or for item histories (fusion space)."""
        if not self.members:
            raise NotFittedError(f"{type(self).__name__} has no members: build it with from_members or load it.")
        uidx = None if user_idx is None else user_idx.cpu().numpy()
        if histories is None:
            if self.seen_items is None:
                raise NotFittedError(
                    f"{type(self).__name__} has no seen items: fit it or build it from fitted members."
                )
            histories = self.seen_items[uidx]
        hist = histories.tocsr()
        scores = [self._member_scores(name, uidx, hist) for name in self.members]
        seen = torch.zeros(hist.shape[0], self.config.num_items, dtype=torch.bool)
        rows = np.repeat(np.arange(hist.shape[0]), np.diff(hist.indptr))
        seen[torch.as_tensor(rows), torch.as_tensor(hist.indices.astype(np.int64))] = True
        return FusionBatch(scores, seen, seen.sum(1).to(torch.float64))

    def fuse(self, batch: FusionBatch) -> torch.Tensor:
        """Fused float64 scores ``(batch, num_items)`` from the members' aligned scores."""
        raise NotImplementedError

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.fuse(self.member_batch(user_idx=user_idx)).to(self.device)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        if not self.supports_history:
            names = [n for n, m in self.members.items() if not m.supports_history]
            raise NotImplementedError(f"Fusion members {names} cannot score users from item histories.")
        return self.fuse(self.member_batch(histories=histories)).to(self.device)

    def to(self, *args, **kwargs):
        for m in self.members.values():
            m.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    # ------------------------------------------------------------------ saving and loading
    def _save_extra(self, folder: str | os.PathLike) -> None:
        """Save hook: each member's files in ``members/<name>/`` (its own config, weights, vocabularies and manifest;
        loadable on its own with ``AutoModelForRecommendation.from_pretrained``), inside the fusion's atomic save."""
        for name, m in self.members.items():
            m.write_model_files(os.path.join(folder, MEMBERS_DIR, name))

    def _load_extra(self, path: str, hub: dict) -> None:
        """Load hook: each member from ``members/<name>/`` through ``AutoModelForRecommendation``.

        Raises:
            MemberLoadError: a member could not be loaded; the message names the member and its folder.
        """
        kept = ("cache_dir", "force_download", "local_files_only", "token", "revision")
        hub = {k: v for k, v in hub.items() if k in kept}
        members = {}
        for spec in self.config.members:
            name = spec["name"]
            sub = f"{MEMBERS_DIR}/{name}"
            try:
                if os.path.isdir(path):
                    members[name] = AutoModelForRecommendation.from_pretrained(os.path.join(path, sub), **hub)
                else:
                    members[name] = AutoModelForRecommendation.from_pretrained(path, subfolder=sub, **hub)
            except Exception as exc:
                raise MemberLoadError(
                    f"Fusion member {name!r} (model_type {spec['model_type']!r}) could not be loaded from "
                    f"{os.path.join(path, sub)}: {type(exc).__name__}: {exc}. Check that the sub-folder is complete "
                    "and that the plugin providing this model type is installed."
                ) from exc
        self.members = members
        self._align = None
        self._refresh_history_support()
        self.requires_grad_(False)


__all__ = [
    "MEMBERS_DIR",
    "FusionBatch",
    "FusionPreTrainedModel",
    "MemberLoadError",
    "ValidationCache",
    "normalize",
    "parse_metric",
]
