"""Running recommenders and policies in the simulator: agents, session rollouts and their logs.

An agent turns the simulator's observation into slates. Two are provided:

- :class:`GreedyAgent`: a recommender's top ``K`` items (the greedy recommender);
- :class:`PolicyAgent`: an exploration policy of :mod:`hf_recsys.policies` (softmax, epsilon-greedy, Thompson,
  LinUCB, or a softmax over :class:`~hf_recsys.policies.reinforce.TopKReinforceRecommender`), with the propensities of
  what it shows, so that its sessions can be logged for off-policy learning and evaluation.

Sequential models read the session: before each step the agent writes each user's state (their history, then the
items clicked so far in the session) into the model's stored histories, and puts the originals back at the end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..data.arrays import unique
from ..policies.reinforce import session_tokens


class SessionState:
    """Writes session states into a sequential model's stored histories (``user_history``) and restores them.

    Args:
        model: a fitted recommender; models without stored histories (EASE, ALS, ...) are left alone.
    """

    def __init__(self, model):
        self.model = model
        hist = getattr(model, "user_history", None)
        self.original = None if hist is None else hist.clone()

    def apply(self, user_idx: np.ndarray, clicks: np.ndarray) -> None:
        """Set the state of the users ``user_idx`` (model indices, distinct) to their history then ``clicks``
        (``(n, T)`` model item indices, ``-1`` for none)."""
        if self.original is None:
            return
        if len(unique(user_idx)) != len(user_idx):
            raise ValueError("a sequential model holds one state per user: run one session per user at a time.")
        idx = torch.as_tensor(user_idx, device=self.original.device)
        length = self.original.shape[1]
        tokens = session_tokens(self.original[idx], torch.as_tensor(clicks, device=self.original.device), length)
        self.model.user_history[idx] = tokens

    def restore(self) -> None:
        if self.original is not None:
            self.model.user_history = self.original.clone()


class _Agent:
    """Maps between the simulator's indices and a model's ids and keeps the session state of a sequential model."""

    name = "agent"

    def __init__(self, model):
        model._require_vocab()
        self.model = model
        self.state = SessionState(model)

    def begin(self, simulator) -> None:
        if simulator.user_vocab is None or simulator.item_vocab is None:
            raise ValueError("the simulator needs user and item vocabularies: build it with UserSimulator.from_model.")
        self._users = self.model.user_vocab.encode(list(simulator.user_vocab.ids), unknown="mask")
        self._items = self.model.item_vocab.encode(list(simulator.item_vocab.ids), unknown="mask")
        self._sim_item_of = np.full(self.model.config.num_items, -1, dtype=np.int64)
        known = self._items >= 0
        self._sim_item_of[self._items[known]] = np.flatnonzero(known)

    def end(self) -> None:
        self.state.restore()

    def _model_users(self, sim_users: np.ndarray) -> np.ndarray:
        idx = self._users[sim_users]
        if (idx < 0).any():
            raise ValueError(f"{int((idx < 0).sum())} simulated user(s) are unknown to {type(self.model).__name__}.")
        return idx

    def _prepare(self, obs: dict, rows: np.ndarray) -> np.ndarray:
        users = self._model_users(obs["user"][rows])
        clicks = obs["clicks"][rows]
        self.state.apply(users, np.where(clicks >= 0, self._items[np.maximum(clicks, 0)], -1))
        return users

    def _to_sim(self, model_items: np.ndarray) -> np.ndarray:
        out = self._sim_item_of[model_items]
        if (out < 0).any():
            raise ValueError("the agent chose items the simulator does not know.")
        return out


class GreedyAgent(_Agent):
    """The greedy recommender: each session's ``K`` best items by the model, never an item the user consumed in the
    log (``exclude_seen``) or clicked earlier in the session.

    Args:
        model: a fitted recommender.
        exclude_seen: leave out the items of the user's log.
    """

    name = "greedy"

    def __init__(self, model, exclude_seen: bool = True):
        super().__init__(model)
        self.exclude_seen = exclude_seen

    @torch.no_grad()
    def act(self, simulator, obs: dict, rows: np.ndarray) -> dict:
        users = self._prepare(obs, rows)
        scores = self.model.score_users(torch.as_tensor(users, device=self.model.device)).float().cpu().numpy()
        scores = scores.astype(np.float64)
        missing = self._sim_item_of < 0
        scores[:, missing] = -np.inf
        if self.exclude_seen and self.model.seen_items is not None:
            seen = self.model.seen_items[users]
            scores[np.repeat(np.arange(len(users)), np.diff(seen.indptr)), seen.indices] = -np.inf
        clicks = obs["clicks"][rows]
        r, c = np.nonzero(clicks >= 0)
        scores[r, self._items[clicks[r, c]]] = -np.inf
        k = simulator.config.slate_size
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(scores, top, 1), axis=1, kind="stable"), 1)
        ones = np.ones(top.shape)
        return {
            "slates": self._to_sim(top),
            "propensity": ones,
            "cascade_propensity": ones,
            "action_propensity": ones,
            "inverse_propensity": ones,
            "inverse_cascade_propensity": ones,
        }


class PolicyAgent(_Agent):
    """An exploration policy of :mod:`hf_recsys.policies` (its ``sample`` and ``action_probabilities``).

    The logged ``propensity`` / ``cascade_propensity`` are the policy's (see :class:`~hf_recsys.policies.Slates`);
    ``action_propensity`` is its probability of each shown item in one draw (``action_probabilities``): the
    ``beta(a | s)`` of :class:`~hf_recsys.policies.reinforce.TopKReinforceRecommender`.

    Args:
        policy: a :class:`~hf_recsys.policies.Policy` over a fitted model (whose session state is kept).
        name: the name logged (default: the policy's).
    """

    def __init__(self, policy, name: str | None = None):
        if getattr(policy, "model", None) is None:
            raise ValueError("PolicyAgent needs a policy over a fitted model (policy.model is None).")
        super().__init__(policy.model)
        self.policy = policy
        self.name = name or policy.name

    def act(self, simulator, obs: dict, rows: np.ndarray) -> dict:
        self._prepare(obs, rows)
        user_ids = simulator.user_ids(obs["user"][rows])
        slates = self.policy.sample(user_ids, simulator.config.slate_size)
        probs = self.policy.action_probabilities(user_ids)
        cand = self.policy._item_index(slates.items)
        items = self._to_sim(self.model.item_vocab.encode(slates.items.reshape(-1)).reshape(slates.items.shape))
        return {
            "slates": items,
            "propensity": slates.propensity,
            "cascade_propensity": slates.cascade_propensity,
            "action_propensity": np.take_along_axis(probs, cand, 1),
            "inverse_propensity": slates.inverse_propensity,  # None where the policy has no unbiased inverse
            "inverse_cascade_propensity": slates.inverse_cascade_propensity,
        }


@dataclass
class SessionResults:
    """What :func:`run_sessions` saw.

    Args:
        returns: ``(n,)`` clicks of each session.
        lengths: ``(n,)`` steps of each session.
        users: ``(n,)`` the sessions' user ids.
        log: the served slates as a ``datasets.Dataset`` (one row per shown item, the columns of
            :meth:`hf_recsys.policies.Slates.to_dataset` (with ``inverse_propensity`` / ``inverse_cascade_propensity``
            where the agent gives them) plus ``session_id``, ``step`` and ``action_propensity``),
            or ``None`` when not logged.
    """

    returns: np.ndarray
    lengths: np.ndarray
    users: np.ndarray
    log: Any = None

    @property
    def mean_return(self) -> float:
        return float(self.returns.mean())

    def mean_interval(self, alpha: float = 0.05, n_bootstrap: int = 2000, seed: int = 0) -> tuple[float, float]:
        """Percentile bootstrap ``(1 - alpha)`` interval of the mean clicks per session."""
        return mean_interval(self.returns, alpha, n_bootstrap, seed)


def mean_interval(values: Any, alpha: float = 0.05, n_bootstrap: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean (e.g. of per-session returns, or of paired differences): the
    bootstrap of :mod:`hf_recsys.policies.ope` on weight-one rounds, whose IPS value is the plain mean."""
    from ..policies import OPEInputs, bootstrap_interval

    values = np.asarray(values, dtype=np.float64).reshape(-1, 1)
    ones = np.ones_like(values)
    return bootstrap_interval(OPEInputs(reward=values, p_log=ones, p_target=ones), "ips", alpha, n_bootstrap, seed)


def run_sessions(
    simulator,
    agent,
    seed: int = 0,
    users: Any = None,
    session_ids: Any = None,
    log: bool = False,
    first_slate_id: int = 0,
    on_step: Any = None,
) -> SessionResults:
    """Run one session per user until every session ends, the agent choosing every slate.

    Args:
        simulator: a :class:`~hf_recsys.simulation.UserSimulator` with vocabularies.
        agent: :class:`GreedyAgent`, :class:`PolicyAgent` or any object with ``begin(simulator)``,
            ``act(simulator, obs, rows) -> {"slates": ...}`` and ``end()``.
        seed: the simulator's seed (the same seed gives two agents the same users and coin flips).
        users: simulator user indices, one session each (distinct for sequential models; default: every user).
        session_ids: keys of the sessions' random draws (default ``0 .. n - 1``).
        log: also return the served slates as a ``datasets.Dataset``.
        first_slate_id: the first logged ``slate_id`` (to append logs of several runs).
        on_step: ``f(simulator, obs, rows)`` called before each step with the active sessions' rows (e.g. to ask
            other policies what they would show in the same states: ``simulator.click_probabilities``).

    Returns:
        :class:`SessionResults`.
    """
    users = np.arange(simulator.num_users) if users is None else np.asarray(users)
    obs, info = simulator.reset(seed=seed, options={"users": users, "session_ids": session_ids})
    keys = info["session_ids"]
    n, k = len(users), simulator.config.slate_size
    returns, parts = np.zeros(n), []
    agent.begin(simulator)
    try:
        while obs["active"].any():
            rows = np.flatnonzero(obs["active"])
            if on_step is not None:
                on_step(simulator, obs, rows)
            out = agent.act(simulator, obs, rows)
            slates = np.tile(np.arange(k), (n, 1))
            slates[rows] = out["slates"]
            step = obs["step"][rows]
            obs, reward, _, _, info = simulator.step(slates)
            returns += reward
            if log:
                parts.append((rows, step, out, info["clicked_position"][rows], keys[rows]))
    finally:
        agent.end()
    ids = simulator.user_ids(users)
    dataset = _log_dataset(simulator, agent, ids, parts, first_slate_id) if log else None
    return SessionResults(returns, obs["step"].copy(), ids, dataset)


def _log_dataset(simulator, agent, user_ids: np.ndarray, parts: list, first_slate_id: int):
    from ..policies import Slates

    rows = np.concatenate([p[0] for p in parts])
    # a column some step did not give (None) is left out of the whole log rather than half filled
    cat = {
        key: np.concatenate([p[2][key] for p in parts])
        for key in parts[0][2]
        if all(p[2].get(key) is not None for p in parts)
    }
    k = simulator.config.slate_size
    clicked_pos = np.concatenate([p[3] for p in parts])
    rewards = (clicked_pos[:, None] == np.arange(k)[None, :]).astype(np.float64)
    items = np.asarray(simulator.item_vocab.decode(cat["slates"]))
    slates = Slates(
        user_ids[rows],
        items,
        cat["propensity"],
        cat["cascade_propensity"],
        policy=agent.name,
        inverse_propensity=cat.get("inverse_propensity"),
        inverse_cascade_propensity=cat.get("inverse_cascade_propensity"),
    )
    ds = slates.to_dataset(rewards, first_slate_id=first_slate_id)
    ds = ds.add_column("session_id", np.repeat(np.concatenate([p[4] for p in parts]), k).tolist())
    ds = ds.add_column("step", np.repeat(np.concatenate([p[1] for p in parts]), k).tolist())
    return ds.add_column("action_propensity", cat["action_propensity"].reshape(-1).astype(np.float64).tolist())


__all__ = ["GreedyAgent", "PolicyAgent", "SessionResults", "SessionState", "mean_interval", "run_sessions"]
