"""The policy contract: exploration on top of any recommender, slates with their propensities, logged slates.

A :class:`Policy` chooses slates of ``k`` distinct items from a fixed set of candidate items for a batch of users.
Each served slate comes with, per position ``j``:

- ``propensity[:, j]``: the probability that the policy shows this item at position ``j`` (the item-position
  marginal; what independent-IPS needs);
- ``cascade_propensity[:, j]``: the probability that the policy shows the first ``j + 1`` items exactly as shown
  (what reward-interaction IPS needs); its last column is the probability of the whole ordered slate.

With ``k = 1`` all three are the probability of the one action. Where a policy has no closed form (Thompson
sampling) the probabilities are Monte-Carlo estimates, as stated by each policy.

A served slate also carries ``inverse_propensity`` and ``inverse_cascade_propensity``: estimates of ``1 / p`` for
the same probabilities that are unbiased where ``p`` itself is only estimated. IPS-type estimators divide by the
logging probability; dividing by a Monte-Carlo estimate of it is biased (Jensen; and the served slate, counted
among the draws so that its estimate is never 0, biases it up), whereas these are exact (``1 / p`` of the closed
form) or the number of independent draws of the policy until the shown item (prefix) comes up again at its position:
a geometric count with mean exactly ``1 / p``. The count stops at ``max_draws``; the capped mean is
``(1 - (1 - p) ** max_draws) / p``, a relative bias of ``-(1 - p) ** max_draws`` (below ``exp(-max_draws p)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..data.arrays import unique

__all__ = ["Policy", "Slates", "check_rewards"]


@dataclass
class Slates:
    """Slates served to a batch of users.

    Args:
        users: ``(n,)`` the users' ids.
        items: ``(n, k)`` the item ids shown, position 0 first.
        propensity: ``(n, k)`` probability that the policy shows ``items[:, j]`` at position ``j``.
        cascade_propensity: ``(n, k)`` probability that the policy shows ``items[:, : j + 1]`` exactly.
        scores: ``(n, k)`` the scores the policy ranked by (model scores, sampled values or upper bounds).
        policy: the name of the policy that served them.
        inverse_propensity: ``(n, k)`` unbiased estimate of ``1 / propensity`` (exact where the policy has a closed
            form; a capped geometric draw count otherwise, see the module docstring), or ``None``.
        inverse_cascade_propensity: ``(n, k)`` the same for ``cascade_propensity``, or ``None`` (Thompson policies:
            their prefix probabilities are mostly too small for a capped draw count).
    """

    users: np.ndarray
    items: np.ndarray
    propensity: np.ndarray
    cascade_propensity: np.ndarray
    scores: np.ndarray | None = None
    policy: str = ""
    inverse_propensity: np.ndarray | None = None
    inverse_cascade_propensity: np.ndarray | None = None

    @property
    def slate_propensity(self) -> np.ndarray:
        """``(n,)`` probability of each whole ordered slate."""
        return self.cascade_propensity[:, -1]

    @property
    def k(self) -> int:
        return self.items.shape[1]

    def to_dataset(
        self,
        rewards: Any = None,
        timestamps: Any = None,
        first_slate_id: int = 0,
    ):
        """The slates as a ``datasets.Dataset``, one row per shown item.

        Columns: ``slate_id``, ``user_id``, ``item_id``, ``position`` (0 = first), ``propensity``,
        ``cascade_propensity``, ``slate_propensity``, ``score``, ``policy``, ``inverse_propensity`` and
        ``inverse_cascade_propensity`` (when the slates have them) and, when given, ``reward`` and ``timestamp``.
        This is the log format :func:`hf_recsys.policies.ope_inputs` reads.

        Args:
            rewards: ``(n, k)`` reward of each shown item (``(n,)`` when ``k == 1``), or ``None`` to fill later.
            timestamps: one time per slate (``(n,)``), or ``None``.
            first_slate_id: id of the first slate (use the running count when logging round after round).

        Returns:
            A ``datasets.Dataset`` with ``n * k`` rows.
        """
        import datasets

        n, k = self.items.shape
        cols: dict[str, Any] = {
            "slate_id": np.repeat(np.arange(first_slate_id, first_slate_id + n, dtype=np.int64), k),
            "user_id": np.repeat(np.asarray(self.users), k),
            "item_id": self.items.reshape(-1),
            "position": np.tile(np.arange(k, dtype=np.int32), n),
            "propensity": self.propensity.reshape(-1).astype(np.float64),
            "cascade_propensity": self.cascade_propensity.reshape(-1).astype(np.float64),
            "slate_propensity": np.repeat(self.slate_propensity.astype(np.float64), k),
            "score": (np.full((n, k), np.nan) if self.scores is None else self.scores).reshape(-1).astype(np.float64),
            "policy": [self.policy] * (n * k),
        }
        for name in ("inverse_propensity", "inverse_cascade_propensity"):
            if getattr(self, name) is not None:
                cols[name] = getattr(self, name).reshape(-1).astype(np.float64)
        if rewards is not None:
            cols["reward"] = check_rewards(rewards, (n, k)).reshape(-1)
        if timestamps is not None:
            ts = np.asarray(timestamps)
            if ts.shape != (n,):
                raise ValueError(f"timestamps must have one entry per slate, shape ({n},), got {ts.shape}.")
            cols["timestamp"] = np.repeat(ts, k)
        cols = {c: v.tolist() if isinstance(v, np.ndarray) and v.dtype == object else v for c, v in cols.items()}
        return datasets.Dataset.from_dict(cols)


def check_rewards(rewards: Any, shape: tuple[int, ...], low: float | None = None, high: float | None = None):
    """Rewards as a float64 array of ``shape``; non-numbers, NaN / inf and values outside ``[low, high]`` raise."""
    arr = np.asarray(rewards)
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"rewards must be numbers, got an array of dtype {arr.dtype} (first value {arr.flat[0]!r}).")
    arr = arr.astype(np.float64)
    if arr.shape != shape and arr.size == int(np.prod(shape)) and len(shape) == 2 and shape[1] == 1:
        arr = arr.reshape(shape)
    if arr.shape != shape:
        raise ValueError(f"rewards must have shape {shape} (one per shown item), got {arr.shape}.")
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} reward(s) are NaN or infinite (first at flat index {np.argmax(bad)}).")
    if low is not None and (arr < low).any() or high is not None and (arr > high).any():
        raise ValueError(f"rewards must lie in [{low}, {high}] for this policy, got min {arr.min()}, max {arr.max()}.")
    return arr


class Policy:
    """Base class of exploration policies over a fixed set of candidate items.

    Subclasses implement :meth:`_sample_idx` (draw slates) and :meth:`_propensities_idx` (the probabilities of
    given slates) in candidate-index space; learning policies also implement :meth:`_update_idx`.

    Args:
        items: the candidate item ids (default: every item of ``model``).
        model: a fitted recommender (:class:`~hf_recsys.RecPreTrainedModel`) whose scores or embeddings the
            policy uses, or ``None`` for policies that need none (Beta-Bernoulli Thompson sampling).
        exclude_seen: never show a user the items they interacted with in the model's training data.
        seed: seed of the policy's random generator (sampling is reproducible for a given seed and call order).
    """

    name: ClassVar[str] = "policy"
    learns: ClassVar[bool] = False

    def __init__(
        self, items: Sequence[Any] | None = None, model: Any = None, exclude_seen: bool = False, seed: int = 0
    ):
        if items is None:
            if model is None:
                raise ValueError(f"{type(self).__name__} needs items= (the candidate item ids) or a fitted model=.")
            model._require_vocab()
            items = model.item_vocab.decode(np.arange(model.config.num_items))
        self.item_ids = np.asarray(items)
        if self.item_ids.ndim != 1 or len(self.item_ids) == 0:
            raise ValueError("items must be a non-empty 1-d list of candidate item ids.")
        if len(unique(self.item_ids)) != len(self.item_ids):
            raise ValueError("items lists some item id more than once: each candidate must appear once.")
        self._position = {item: j for j, item in enumerate(self.item_ids.tolist())}
        self.model = model
        self.exclude_seen = exclude_seen
        if exclude_seen and model is None:
            raise ValueError("exclude_seen=True needs the model= whose training interactions say what was seen.")
        self._model_idx = None if model is None else model.item_vocab.encode(list(self.item_ids))
        self.rng = np.random.default_rng(seed)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    # ------------------------------------------------------------------ helpers for subclasses
    def _item_index(self, items: Any) -> np.ndarray:
        """Candidate indices of item ids (any shape); an id that is not a candidate raises ``ValueError``."""
        arr = np.asarray(items)
        flat = arr.reshape(-1).tolist()
        missing = [i for i in flat if i not in self._position]
        if missing:
            raise ValueError(
                f"{len(missing)} item id(s) are not candidates of this policy: {', '.join(map(repr, missing[:5]))}."
            )
        return np.array([self._position[i] for i in flat], dtype=np.int64).reshape(arr.shape)

    def _eligible(self, users: np.ndarray) -> np.ndarray | None:
        """``(n, num_items)`` boolean mask of the items each user may be shown, or ``None`` (all of them)."""
        if not self.exclude_seen or self.model.seen_items is None:
            return None
        user_idx = self.model._encode_users(list(users))
        seen = self.model.seen_items[user_idx][:, self._model_idx].toarray() > 0
        return ~seen

    def _model_scores(self, users: np.ndarray) -> np.ndarray:
        """``(n, num_items)`` float64 scores of the candidates by the model (``-inf`` where not eligible)."""
        scores = self.model.score(list(users), list(self.item_ids)).astype(np.float64)
        mask = self._eligible(users)
        if mask is not None:
            scores[~mask] = -np.inf
        return scores

    def _check_k(self, k: int, mask: np.ndarray | None) -> None:
        fewest = self.num_items if mask is None else int(mask.sum(1).min())
        if k < 1 or k > fewest:
            raise ValueError(
                f"slates of k={k} items need 1 <= k <= the number of items each user may be shown ({fewest})."
            )

    # ------------------------------------------------------------------ the public API
    def sample(self, users: Any, k: int = 1) -> Slates:
        """Draw one slate of ``k`` distinct items for each user, with its propensities.

        Args:
            users: user ids (a single id is one user).
            k: items per slate.

        Returns:
            :class:`Slates` with ``items`` of shape ``(len(users), k)``.
        """
        users = _as_users(users)

        def one(batch: np.ndarray) -> tuple[np.ndarray, ...]:
            idx, scores = self._sample_idx(batch, k)
            marg, casc = self._propensities_idx(batch, idx, drawn=True)
            return (idx, scores, marg, casc, *self._inverse_propensities_idx(batch, idx, marg, casc))

        idx, scores, marg, casc, inv_marg, inv_casc = self._batched(one, users)
        inv_casc = None if np.isnan(inv_casc).all() else inv_casc  # a policy without unbiased prefix inverses
        return Slates(users, self.item_ids[idx], marg, casc, scores, self.name, inv_marg, inv_casc)

    def propensities(self, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """The probabilities with which this policy would show the given slates to the given users.

        This is what off-policy evaluation asks of a target policy on logged slates.

        Args:
            users: ``(n,)`` user ids.
            items: ``(n, k)`` item ids (``(n,)`` for ``k = 1``), position 0 first.

        Returns:
            ``(propensity, cascade_propensity)``, each ``(n, k)``: the item-position marginals and the
            probabilities of each slate prefix (see :class:`Slates`).
        """
        users, idx = self._slates_of(users, items)
        return self._batched(lambda b, i: self._propensities_idx(b, i, drawn=False), users, idx)

    def _slates_of(self, users: Any, items: Any) -> tuple[np.ndarray, np.ndarray]:
        """Users as an array and their shown items as ``(n, k)`` candidate indices (one slate per user)."""
        users = _as_users(users)
        idx = self._item_index(items)
        if idx.ndim == 1:
            idx = idx[:, None]
        if idx.shape[0] != len(users):
            raise ValueError(f"items has {idx.shape[0]} slates but {len(users)} users were given.")
        return users, idx

    def action_probabilities(self, users: Any) -> np.ndarray:
        """``(n, num_items)`` probability of each candidate being shown first (the action distribution at k=1)."""
        return self._batched(lambda b: (self._first_position_probs(b),), _as_users(users))[0]

    def update(self, users: Any, items: Any, rewards: Any):
        """Learn from the rewards of shown items.

        Args:
            users: ``(n,)`` user ids.
            items: ``(n, k)`` (or ``(n,)``) item ids shown to them.
            rewards: rewards of the same shape as ``items``.

        Returns:
            The policy itself.
        """
        users, idx = self._slates_of(users, items)
        r = check_rewards(rewards, idx.shape, *self._reward_range)
        if not self.learns:
            raise NotImplementedError(
                f"{type(self).__name__} explores around its model's scores and learns nothing itself: update the "
                "model instead (its partial_fit), or use a learning policy (Thompson sampling, LinUCB)."
            )
        self._update_idx(np.repeat(users, idx.shape[1]), idx.reshape(-1), r.reshape(-1))
        return self

    _reward_range: ClassVar[tuple[float | None, float | None]] = (None, None)
    batch_size: int = 1024  # users handled at once: memory stays about batch_size x num_items x n_samples

    def _batched(self, fn, users: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
        """``fn(users_batch, *arrays_batch) -> tuple of arrays`` over batches of users, concatenated (tqdm bar)."""
        from tqdm.auto import tqdm

        starts = range(0, len(users), self.batch_size)
        parts = [
            fn(users[s : s + self.batch_size], *(a[s : s + self.batch_size] for a in arrays))
            for s in tqdm(starts, desc=self.name, unit="batch", disable=len(starts) < 20)
        ]
        return tuple(np.concatenate(p) for p in zip(*parts))

    # ------------------------------------------------------------------ to implement
    def _sample_idx(self, users: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _propensities_idx(self, users: np.ndarray, idx: np.ndarray, drawn: bool) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _inverse_propensities_idx(
        self, users: np.ndarray, idx: np.ndarray, marg: np.ndarray, casc: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Unbiased ``1 / p`` of served slates (all-NaN prefixes: none); this default holds for exact probabilities."""
        return _inverse(marg), _inverse(casc)

    def _first_position_probs(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _update_idx(self, users: np.ndarray, idx: np.ndarray, rewards: np.ndarray) -> None:
        raise NotImplementedError


def _inverse(p: np.ndarray) -> np.ndarray:
    """``1 / p`` (``inf`` where ``p`` is 0)."""
    with np.errstate(divide="ignore"):
        return 1.0 / p


def _as_users(users: Any) -> np.ndarray:
    if isinstance(users, (str, bytes, int, np.integer)):
        return np.asarray([users])
    arr = np.asarray(users)
    if arr.ndim != 1:
        raise ValueError(f"users must be a 1-d list of user ids, got shape {arr.shape}.")
    return arr
