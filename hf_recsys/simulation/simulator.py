"""A user simulator built from a fitted recommender: slates in, clicks and leaving out, many sessions at once.

The simulated user of a session is a real user of the log the model was fitted on. Shown a slate of ``K`` items, the
user clicks at most one of them, by a multinomial logit over the slate plus a no-click option:

    U_j = relevance_scale * z(u, i_j) - position_bias * log(1 + j) - genre_satiation * sat(u) . g(i_j)
          - repeat_penalty * clicks(u, i_j) - boredom * shown(u, i_j)
    P(click j) = exp(U_j) / (exp(no_click_utility) + sum_k exp(U_k)),   P(no click) = the rest

- ``z(u, i)``: the model's score of item ``i`` for user ``u``, standardised per user (the truth of the simulation);
- ``log(1 + j)`` at position ``j = 0 .. K-1``: position bias (a user looks at the top of a slate more);
- ``sat(u)``: the user's genre satiation, ``sat <- satiation_decay * sat + g(clicked item)`` after every step, where
  ``g(i)`` are the item's genres normalised to sum to 1: more of the same genre is worth less (satiation);
- ``clicks(u, i)``: times the user consumed the item (its history in the log counts once with
  ``history_as_consumed``) and ``shown(u, i)``: times it was shown in this session (boredom).

After each step the user leaves (``terminated``) with probability ``leave_after_click`` or ``leave_no_click``; a
session that reaches ``max_steps`` is ``truncated``. All randomness is a counter-based hash of
``(seed, session id, step, slot)``, so a session's draws do not depend on which other sessions run beside it: many
sessions stepped together give exactly what each gives alone (and two policies face the same users and the same
coin flips for one seed: common random numbers for comparing them).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

logger = logging.getLogger(__name__)


@dataclass
class SimulatorConfig:
    """The choice model, satiation and leaving of :class:`UserSimulator`.

    Args:
        slate_size: items shown per step (``K``).
        max_steps: steps after which a session is truncated.
        relevance_scale: weight of the user's standardised relevance in the utility.
        no_click_utility: utility of not clicking (higher: fewer clicks).
        position_bias: utility lost at position ``j`` is ``position_bias * log(1 + j)`` (0: no position bias).
        genre_satiation: weight of the satiation with the item's genres (0: none).
        satiation_decay: share of the satiation kept from one step to the next.
        repeat_penalty: utility lost per earlier consumption of the item (its history counts once, see
            ``history_as_consumed``).
        boredom: utility lost per earlier showing of the item in the session.
        leave_no_click: probability of leaving after a step without a click.
        leave_after_click: probability of leaving after a click.
        history_as_consumed: the items of the user's log count as consumed once.
    """

    slate_size: int = 10
    max_steps: int = 20
    relevance_scale: float = 1.0
    no_click_utility: float = 3.0
    position_bias: float = 1.0
    genre_satiation: float = 1.0
    satiation_decay: float = 0.8
    repeat_penalty: float = 4.0
    boredom: float = 0.5
    leave_no_click: float = 0.3
    leave_after_click: float = 0.05
    history_as_consumed: bool = True

    def __post_init__(self):
        for name in ("slate_size", "max_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"SimulatorConfig.{name} must be an int >= 1, got {value!r}.")
        if self.max_steps > 255:
            raise ValueError(f"SimulatorConfig.max_steps must be <= 255 (counts are uint8), got {self.max_steps}.")
        for name in ("relevance_scale", "position_bias", "genre_satiation", "repeat_penalty", "boredom"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not np.isfinite(value) or value < 0:
                raise ValueError(f"SimulatorConfig.{name} must be a finite number >= 0, got {value!r}.")
        if not np.isfinite(self.no_click_utility):
            raise ValueError(f"SimulatorConfig.no_click_utility must be finite, got {self.no_click_utility!r}.")
        for name in ("satiation_decay", "leave_no_click", "leave_after_click"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 1:
                raise ValueError(f"SimulatorConfig.{name} must be a probability in [0, 1], got {value!r}.")


# ---------------------------------------------------------------------------------------------- randomness
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser, elementwise on uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + _GOLDEN
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def hashed_uniforms(seed: int, keys: np.ndarray, steps: np.ndarray, width: int) -> np.ndarray:
    """Uniforms in (0, 1), shape ``(len(keys), width)``: a hash of ``(seed, key, step, slot)``, so each row depends
    only on its own key and step (vectorised, and the same whichever rows are computed together)."""
    with np.errstate(over="ignore"):
        h = _splitmix64(np.asarray([seed], dtype=np.uint64))
        h = _splitmix64(h + np.asarray(keys, dtype=np.uint64))
        h = _splitmix64(h + np.asarray(steps, dtype=np.uint64) * _GOLDEN)
        h = _splitmix64(h[:, None] + np.arange(width, dtype=np.uint64)[None, :])
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


# ---------------------------------------------------------------------------------------------- building blocks
def standardise_rows(scores: np.ndarray) -> np.ndarray:
    """Each row minus its mean, divided by its standard deviation (rows without spread become zeros)."""
    scores = np.asarray(scores, dtype=np.float64)
    if not np.isfinite(scores).all():
        raise ValueError("relevance scores hold NaN or infinite values; the model that made them is not usable.")
    std = scores.std(axis=1, keepdims=True)
    return ((scores - scores.mean(axis=1, keepdims=True)) / np.where(std > 0, std, 1.0)).astype(np.float32)


def item_genre_matrix(items: Any, item_vocab, genre_column: str = "genres") -> tuple[np.ndarray, list[str]]:
    """The genres of every item of ``item_vocab`` as a ``(num_items, num_genres)`` 0/1 matrix, and the genre names.

    Args:
        items: an item table (``datasets.Dataset`` or DataFrame) with ``item_id`` and a list column of genres (as
            :func:`~hf_recsys.data.load_movielens` returns).
        item_vocab: the model's item vocabulary; items missing from the table get no genre.
        genre_column: the list column.
    """
    df = items.to_pandas() if hasattr(items, "to_pandas") else items
    for col in ("item_id", genre_column):
        if col not in df.columns:
            raise ValueError(f"the item table has no {col!r} column (columns: {list(df.columns)}).")
    idx = item_vocab.encode(list(df["item_id"]), unknown="mask")
    lists = [list(g) if g is not None else [] for g in df[genre_column]]
    names = sorted({g for gl in lists for g in gl} - {"(no genres listed)"})
    col_of = {g: j for j, g in enumerate(names)}
    rows = [r for r, gl in zip(idx, lists) if r >= 0 for g in gl if g in col_of]
    cols = [col_of[g] for r, gl in zip(idx, lists) if r >= 0 for g in gl if g in col_of]
    out = np.zeros((len(item_vocab), len(names)), dtype=np.float32)
    out[np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)] = 1.0
    return out, names


@torch.no_grad()
def model_relevance(model, users: Any = None, batch_size: int = 256) -> np.ndarray:
    """A fitted model's scores of every item for ``users`` (index space; default: all its users), standardised per
    user: the relevance of :class:`UserSimulator`."""
    model._require_vocab()
    user_idx = np.arange(model.config.num_users) if users is None else model._encode_users(list(users))
    out = np.empty((len(user_idx), model.config.num_items), dtype=np.float32)
    for start in range(0, len(user_idx), batch_size):
        idx = torch.as_tensor(user_idx[start : start + batch_size], device=model.device)
        out[start : start + batch_size] = model.score_users(idx).float().cpu().numpy()
    return standardise_rows(out)


# ---------------------------------------------------------------------------------------------- the simulator
class UserSimulator:
    """Sessions of simulated users reacting to slates, vectorised over sessions (a gymnasium-style API).

    ``reset(seed, options)`` starts ``num_sessions`` sessions and returns ``(observation, info)``; ``step(slates)``
    takes the ``(num_sessions, slate_size)`` item indices shown and returns ``(observation, reward, terminated,
    truncated, info)``, arrays with one entry per session. A finished session stays finished (reward 0, its slate
    ignored) until the next ``reset``. For a real ``gymnasium.Env`` (one session) use :meth:`as_gym_env`.

    Observations are dicts of arrays: ``user`` (user index), ``step`` (steps done), ``clicks``
    (``(n, max_steps)`` clicked item indices in order, ``-1`` after the last) and ``active`` (still in session).
    ``info`` holds ``click_probs`` (``(n, K + 1)``: no click, then each position), ``clicked_item`` and
    ``clicked_position`` (``-1``: no click) and ``was_active``.

    Args:
        relevance: ``(num_users, num_items)`` relevance of every item for every user (e.g. :func:`model_relevance`).
        config: :class:`SimulatorConfig` (or its options as keyword arguments).
        item_genres: ``(num_items, num_genres)`` genre indicators (``None``: no genre satiation).
        history: ``(num_users, num_items)`` sparse matrix of the items each user consumed before (their log).
        user_vocab, item_vocab: the vocabularies of the users and items, to translate ids.
        num_sessions: sessions started by a ``reset`` without ``options["users"]``.

    Example:
        ```python
        >>> import numpy as np
        >>> from hf_recsys.simulation import UserSimulator
        >>> sim = UserSimulator(np.random.default_rng(0).normal(size=(5, 30)), slate_size=3, num_sessions=4)
        >>> obs, info = sim.reset(seed=0)
        >>> obs, reward, terminated, truncated, info = sim.step(np.tile([0, 1, 2], (4, 1)))
        >>> reward.shape
        (4,)
        ```
    """

    def __init__(
        self,
        relevance: np.ndarray,
        config: SimulatorConfig | None = None,
        item_genres: np.ndarray | None = None,
        history: sp.spmatrix | None = None,
        user_vocab=None,
        item_vocab=None,
        num_sessions: int = 1,
        **config_kwargs: Any,
    ):
        if config is not None and config_kwargs:
            raise ValueError("Pass either config or its options as keyword arguments, not both.")
        self.config = config if config is not None else SimulatorConfig(**config_kwargs)
        rel = np.asarray(relevance, dtype=np.float32)
        if rel.ndim != 2 or rel.shape[1] < self.config.slate_size:
            raise ValueError(
                f"relevance must be (num_users, num_items) with num_items >= slate_size={self.config.slate_size}, "
                f"got shape {rel.shape}."
            )
        if not np.isfinite(rel).all():
            raise ValueError("relevance holds NaN or infinite values.")
        self.relevance = rel
        self.num_users, self.num_items = rel.shape
        genres = np.zeros((self.num_items, 0), np.float32) if item_genres is None else np.asarray(item_genres)
        if genres.ndim != 2 or genres.shape[0] != self.num_items or (genres < 0).any():
            raise ValueError(f"item_genres must be a non-negative ({self.num_items}, num_genres) matrix.")
        self.genre_share = (genres / np.maximum(genres.sum(1, keepdims=True), 1e-12)).astype(np.float32)
        if history is not None and history.shape != rel.shape:
            raise ValueError(f"history has shape {history.shape}, expected {rel.shape} (users x items).")
        self.history = None if history is None else sp.csr_matrix(history)
        self.user_vocab, self.item_vocab = user_vocab, item_vocab
        if int(num_sessions) < 1:
            raise ValueError(f"num_sessions must be >= 1, got {num_sessions!r}.")
        self.num_sessions = int(num_sessions)
        self._seeder = np.random.default_rng()
        self._seed = None

    # ------------------------------------------------------------------ construction from a model
    @classmethod
    def from_model(
        cls,
        model,
        items: Any = None,
        config: SimulatorConfig | None = None,
        genre_column: str = "genres",
        num_sessions: int = 1,
        **config_kwargs: Any,
    ) -> UserSimulator:
        """The simulator whose truth is a fitted recommender: its standardised scores are the relevance, its seen
        items the users' history and ``items``' genres drive satiation.

        Args:
            model: a fitted hf-recsys model (e.g. EASE or the causal sequential model on ml-latest-small).
            items: item table with a genres list column (``None``: no genre satiation).
            config, **config_kwargs: :class:`SimulatorConfig`.
            genre_column: the genres column of ``items``.
            num_sessions: sessions per ``reset``.
        """
        genres = None if items is None else item_genre_matrix(items, model.item_vocab, genre_column)[0]
        sim = cls(
            model_relevance(model),
            config,
            item_genres=genres,
            history=model.seen_items,
            user_vocab=model.user_vocab,
            item_vocab=model.item_vocab,
            num_sessions=num_sessions,
            **config_kwargs,
        )
        logger.info("User simulator from %s: %d users, %d items.", type(model).__name__, *sim.relevance.shape)
        return sim

    # ------------------------------------------------------------------ the gymnasium-style API
    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Start new sessions.

        Args:
            seed: seeds the sessions (the users drawn and every later draw); ``None`` continues from the last seed.
            options: ``users`` (user indices, one session each; default ``num_sessions`` users drawn uniformly)
                and ``session_ids`` (ints keying each session's random draws; default ``0 .. n - 1``).

        Returns:
            ``(observation, info)``.
        """
        if seed is not None:
            self._seeder = np.random.default_rng(seed)
        self._seed = int(self._seeder.integers(0, 2**63 - 1))
        options = dict(options or {})
        unknown = set(options) - {"users", "session_ids"}
        if unknown:
            raise ValueError(f"unknown reset options {sorted(unknown)}; use 'users' and 'session_ids'.")
        users = options.get("users")
        if users is None:
            users = np.random.default_rng(self._seed).integers(0, self.num_users, self.num_sessions)
        users = self._check_index(users, self.num_users, "user")
        keys = np.arange(len(users)) if options.get("session_ids") is None else np.asarray(options["session_ids"])
        if keys.shape != users.shape or not np.issubdtype(keys.dtype, np.integer) or (keys < 0).any():
            raise ValueError(f"session_ids must be {len(users)} non-negative ints, one per user.")
        n = len(users)
        self._users, self._keys = users, keys.astype(np.int64)
        self._steps = np.zeros(n, dtype=np.int64)
        self._active = np.ones(n, dtype=bool)
        self._clicks = np.full((n, self.config.max_steps), -1, dtype=np.int64)
        self._shown = np.zeros((n, self.num_items), dtype=np.uint8)
        self._consumed = np.zeros((n, self.num_items), dtype=np.uint8)
        if self.history is not None and self.config.history_as_consumed:
            self._consumed[:] = self.history[users].toarray() > 0
        self._satiation = np.zeros((n, self.genre_share.shape[1]), dtype=np.float32)
        return self._observation(), {"session_ids": self._keys.copy()}

    def step(self, slates: Any) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray, dict]:
        """Show one slate per session and simulate the users' reactions.

        Args:
            slates: ``(num_sessions, slate_size)`` item indices, best position first, no item twice in a slate (the
                rows of finished sessions are ignored).

        Returns:
            ``(observation, reward, terminated, truncated, info)``: ``reward`` is 1.0 for a click, else 0.0.
        """
        self._require_reset()
        cfg, n, k = self.config, len(self._users), self.config.slate_size
        act = self._active.copy()
        slates = self._check_slates(slates, act)
        probs = self._click_probs(slates)
        u = hashed_uniforms(self._seed, self._keys, self._steps, k + 2)
        choice = np.argmax(np.log(probs + 1e-300) - np.log(-np.log(u[:, : k + 1])), axis=1)  # Gumbel-max sample
        clicked = act & (choice > 0)
        rows = np.arange(n)
        item = np.where(clicked, slates[rows, np.maximum(choice - 1, 0)], -1)
        self._update_state(slates, act, clicked, item)
        leave = np.where(clicked, cfg.leave_after_click, cfg.leave_no_click)
        terminated = act & (u[:, k + 1] < leave)
        truncated = act & ~terminated & (self._steps >= cfg.max_steps)
        self._active = act & ~terminated & ~truncated
        info = {
            "click_probs": np.where(act[:, None], probs, 0.0),
            "clicked_item": item,
            "clicked_position": np.where(clicked, choice - 1, -1),
            "was_active": act,
        }
        return self._observation(), clicked.astype(np.float64), terminated, truncated, info

    def click_probabilities(self, slates: Any, rows: Any = None) -> np.ndarray:
        """Probabilities of no click (column 0) and of a click at each position for the given slates, in the
        sessions' current state (nothing changes): ``(len(rows), slate_size + 1)``.

        Args:
            slates: ``(len(rows), slate_size)`` item indices.
            rows: the sessions the slates are for (default: all, in order).
        """
        self._require_reset()
        rows = np.arange(len(self._users)) if rows is None else np.asarray(rows, dtype=np.int64)
        slates = self._check_slates(slates, np.ones(len(rows), dtype=bool), len(rows))
        return self._click_probs(slates, rows)

    def utilities(self, slates: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """``(n, slate_size)`` utilities of the slate items at their positions (the logit's terms) for the sessions
        ``rows`` (default: all)."""
        cfg = self.config
        sess = (np.arange(len(self._users)) if rows is None else np.asarray(rows))[:, None]
        util = cfg.relevance_scale * self.relevance[self._users[sess], slates].astype(np.float64)
        util -= cfg.position_bias * np.log1p(np.arange(slates.shape[1]))[None, :]
        if self.genre_share.shape[1] and cfg.genre_satiation:
            sat = self._satiation[sess[:, 0]]
            util -= cfg.genre_satiation * np.einsum("nkg,ng->nk", self.genre_share[slates], sat)
        util -= cfg.repeat_penalty * self._consumed[sess, slates] + cfg.boredom * self._shown[sess, slates]
        return util

    def as_gym_env(self):
        """This simulator as a ``gymnasium.Env`` of one session at a time (needs ``pip install "hf-recsys[sim]"``)."""
        from .gym_env import SimulatorEnv

        return SimulatorEnv(self)

    def user_ids(self, user_idx: np.ndarray) -> np.ndarray:
        """The users' own ids for user indices (needs ``user_vocab``)."""
        if self.user_vocab is None:
            raise ValueError("This simulator has no user vocabulary: build it with from_model or pass user_vocab.")
        return np.asarray(self.user_vocab.decode(np.asarray(user_idx)))

    # ------------------------------------------------------------------ internals
    def _click_probs(self, slates: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        util = self.utilities(slates, rows)
        logits = np.concatenate([np.full((len(util), 1), self.config.no_click_utility), util], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def _update_state(self, slates: np.ndarray, act: np.ndarray, clicked: np.ndarray, item: np.ndarray) -> None:
        rows = np.flatnonzero(act)
        self._shown[rows[:, None], slates[rows]] += 1
        crow = np.flatnonzero(clicked)
        self._consumed[crow, item[crow]] = np.minimum(self._consumed[crow, item[crow]].astype(np.int64) + 1, 255)
        self._satiation[rows] *= self.config.satiation_decay
        self._satiation[crow] += self.genre_share[item[crow]]
        self._clicks[crow, self._steps[crow]] = item[crow]
        self._steps[rows] += 1

    def _observation(self) -> dict:
        return {
            "user": self._users.copy(),
            "step": self._steps.copy(),
            "clicks": self._clicks.copy(),
            "active": self._active.copy(),
        }

    def _require_reset(self) -> None:
        if self._seed is None:
            raise RuntimeError("Call reset() before step().")

    @staticmethod
    def _check_index(values: Any, size: int, what: str) -> np.ndarray:
        arr = np.asarray(values)
        if arr.ndim != 1 or len(arr) == 0 or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{what}s must be a non-empty 1-d array of {what} indices, got {arr.dtype} {arr.shape}.")
        bad = (arr < 0) | (arr >= size)
        if bad.any():
            raise ValueError(f"{what} indices must be in [0, {size}); got {arr[bad][:5].tolist()}.")
        return arr.astype(np.int64)

    def _check_slates(self, slates: Any, active: np.ndarray, n: int | None = None) -> np.ndarray:
        s = np.asarray(slates)
        n, k = len(self._users) if n is None else n, self.config.slate_size
        if s.shape != (n, k) or not np.issubdtype(s.dtype, np.integer):
            raise ValueError(
                f"slates must be an int array of shape ({n} sessions, {k} slots), got {s.dtype} {s.shape}."
            )
        s = np.where(active[:, None], s, np.arange(k)[None, :]).astype(np.int64)  # finished sessions: ignored
        bad = (s < 0) | (s >= self.num_items)
        if bad.any():
            raise ValueError(f"slate item indices must be in [0, {self.num_items}); got {s[bad][:5].tolist()}.")
        srt = np.sort(s, axis=1)
        dup = (srt[:, 1:] == srt[:, :-1]).any(axis=1)
        if dup.any():
            raise ValueError(f"a slate shows an item twice (sessions {np.flatnonzero(dup)[:5].tolist()}).")
        return s

    def __repr__(self) -> str:
        opts = ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())
        return f"UserSimulator({self.num_users} users, {self.num_items} items, {opts})"


__all__ = [
    "SimulatorConfig",
    "UserSimulator",
    "hashed_uniforms",
    "item_genre_matrix",
    "model_relevance",
    "standardise_rows",
]
