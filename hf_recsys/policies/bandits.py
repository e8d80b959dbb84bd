"""Exploration policies over any recommender: epsilon-greedy, softmax, Thompson sampling, LinUCB.

All of them are vectorised over users (numpy), seeded, and serve slates of ``k`` distinct items with the
probability of each shown item (see :mod:`hf_recsys.policies.base`).

- :class:`EpsilonGreedyPolicy`: the model's top-``k`` slate, or with probability ``epsilon`` a uniformly random
  ordered slate; every probability is exact.
- :class:`SoftmaxPolicy`: a Plackett-Luce slate from ``softmax(score / temperature)`` (sampled without
  replacement, position by position); the slate and prefix probabilities are exact, the item-position
  marginals beyond the first position are Monte-Carlo estimates.
- :class:`BetaThompsonPolicy`: Beta-Bernoulli posterior per item; :class:`LinearThompsonPolicy`: a Gaussian
  posterior per user over the item embeddings. Their probabilities are Monte-Carlo estimates.
- :class:`LinUCBPolicy`: the top-``k`` upper confidence bounds of the same per-user linear model (deterministic).

Monte-Carlo estimates use ``n_samples`` fresh draws of the policy; for the slate a policy has just served, the
served draw counts as one of ``n_samples + 1`` draws (so a served slate never gets probability 0). That makes the
served slate's Monte-Carlo ``propensity`` biased up (by about ``(1 - p) / (n_samples + 1)``): IPS-type estimators
should divide by nothing but multiply by the served slate's ``inverse_propensity`` instead, which for these
policies is the number of further independent draws until the shown item comes up at its position again
(geometric, mean ``1 / p`` exactly, drawn ``n_samples`` at a time and capped at ``max_draws``, by default
``10 * n_samples``; see :mod:`hf_recsys.policies.base` for what the cap costs). Thompson policies log no
``inverse_cascade_propensity`` (their prefix probabilities are mostly below ``1 / max_draws``): their RIPS and
slate-IPS still divide by the Monte-Carlo ``cascade_propensity``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..data.arrays import unique
from .base import Policy

__all__ = [
    "BetaThompsonPolicy",
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "LinearThompsonPolicy",
    "SoftmaxPolicy",
]

_CHUNK = 2**23  # float64 values held at once by the vectorised inner loops (64 MiB)


def _greedy(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` best scores per row, best first; ties go to the earlier candidate."""
    return np.argsort(-scores, axis=-1, kind="stable")[..., :k]


def _topk(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest values along the last axis, largest first (for continuous random values)."""
    part = np.argpartition(-values, k - 1, axis=-1)[..., :k]
    order = np.argsort(-np.take_along_axis(values, part, axis=-1), axis=-1)
    return np.take_along_axis(part, order, axis=-1)


def _prefix_match(draws: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-position and per-prefix agreement of ``draws`` ``(n, S, k)`` with slates ``idx`` ``(n, k)``."""
    same = draws == idx[:, None, :]
    return same, np.cumprod(same, axis=-1).astype(bool)


def _geometric_counts(hits_of, n: int, m: int, batch: int, cap: int) -> np.ndarray:
    """``(n, m)`` number of independent draws until each of ``m`` events first happens, capped at ``cap``.

    Args:
        hits_of: ``(rows, s) -> (len(rows), s, m)`` booleans: whether each event happens in each of ``s`` fresh
            independent draws for the given rows.
        n, m: rows and events per row.
        batch: draws per round (rows whose events all happened drop out of the next round).
        cap: the most draws per row; an event that has not happened by then counts ``cap``.

    Returns:
        float64 counts ``N`` with ``E[N] = (1 - (1 - p) ** cap) / p`` for an event of probability ``p``.
    """
    count = np.zeros((n, m))
    done = np.zeros((n, m), dtype=bool)
    drawn = 0
    while drawn < cap and not done.all():
        rows = np.flatnonzero(~done.all(1))
        s = min(batch, cap - drawn)
        hits = hits_of(rows, s)
        pending, happened = ~done[rows], hits.any(1)
        count[rows] += np.where(pending, np.where(happened, hits.argmax(1) + 1, s), 0)
        done[rows] |= happened
        drawn += s
    return count


def _max_draws(max_draws: int | None, n_samples: int) -> int:
    cap = 10 * n_samples if max_draws is None else int(max_draws)
    if cap < 1:
        raise ValueError(f"max_draws must be >= 1, got {max_draws}.")
    return cap


def _users_per_chunk(per_user: int) -> int:
    return max(1, _CHUNK // max(per_user, 1))


# ---------------------------------------------------------------------------------------------- model-score policies
class EpsilonGreedyPolicy(Policy):
    """The model's top-``k`` slate; with probability ``epsilon`` a uniformly random ordered slate instead.

    Args:
        model: a fitted recommender; its scores rank the candidates.
        epsilon: exploration probability in ``[0, 1]`` (0: always greedy; 1: uniform random).
        items: candidate item ids (default: all of the model's items).
        exclude_seen: never show items the user interacted with in training.
        seed: random seed.

    Every probability is exact: the item at position ``j`` has marginal
    ``(1 - epsilon) [item == greedy_j] + epsilon / n`` (``n`` eligible items), the first ``j + 1`` items
    ``(1 - epsilon) [prefix == greedy prefix] + epsilon / (n (n - 1) ... (n - j))``.
    """

    name = "epsilon_greedy"

    def __init__(
        self,
        model: Any,
        epsilon: float = 0.1,
        items: Sequence[Any] | None = None,
        exclude_seen: bool = False,
        seed: int = 0,
    ):
        if not 0.0 <= float(epsilon) <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon}.")
        super().__init__(items, model, exclude_seen, seed)
        self.epsilon = float(epsilon)

    def _eligible_count(self, users: np.ndarray, scores: np.ndarray) -> np.ndarray:
        return np.isfinite(scores).sum(1) if self.exclude_seen else np.full(len(users), self.num_items)

    def _sample_idx(self, users, k):
        scores = self._model_scores(users)
        self._check_k(k, np.isfinite(scores) if self.exclude_seen else None)
        idx = _greedy(scores, k)
        explore = self.rng.random(len(users)) < self.epsilon
        if explore.any():
            noise = self.rng.random((int(explore.sum()), self.num_items))
            noise[~np.isfinite(scores[explore])] = -1.0
            idx[explore] = _topk(noise, k)
        return idx, np.take_along_axis(scores, idx, 1)

    def _propensities_idx(self, users, idx, drawn):
        scores = self._model_scores(users)
        k = idx.shape[1]
        n_ok = self._eligible_count(users, scores).astype(np.float64)
        greedy = _greedy(scores, k)
        ok = np.isfinite(np.take_along_axis(scores, idx, 1))
        same, prefix = _prefix_match(greedy[:, None, :], idx)
        uniform_prefix = np.cumprod(1.0 / (n_ok[:, None] - np.arange(k)[None, :]), axis=1)
        marg = (1 - self.epsilon) * same[:, 0] + self.epsilon / n_ok[:, None]
        casc = (1 - self.epsilon) * prefix[:, 0] + self.epsilon * uniform_prefix
        return np.where(ok, marg, 0.0), np.where(np.cumprod(ok, axis=1).astype(bool), casc, 0.0)

    def _first_position_probs(self, users):
        scores = self._model_scores(users)
        n_ok = self._eligible_count(users, scores)[:, None]
        probs = np.where(np.isfinite(scores), self.epsilon / n_ok, 0.0)
        probs[np.arange(len(users)), _greedy(scores, 1)[:, 0]] += 1 - self.epsilon
        return probs


class SoftmaxPolicy(Policy):
    """Boltzmann exploration: a Plackett-Luce slate from ``softmax(score / temperature)`` over the candidates.

    Args:
        model: a fitted recommender; its scores are the logits.
        temperature: > 0; small values approach the greedy slate, large ones the uniform one.
        items: candidate item ids (default: all of the model's items).
        exclude_seen: never show items the user interacted with in training.
        n_samples: Monte-Carlo draws for the item-position marginals beyond position 0.
        seed: random seed.
        max_draws: cap on the draws behind a served slate's ``inverse_propensity`` (default ``10 * n_samples``).

    The probability of the first ``j + 1`` items is exact: ``prod_l p(i_l) / (1 - sum_{m<l} p(i_m))``; so is the
    marginal of position 0 (``p(i_0)``). The marginals of later positions are estimated from ``n_samples`` slates;
    their ``inverse_propensity`` on a served slate is a geometric draw count (unbiased up to the cap).
    """

    name = "softmax"

    def __init__(
        self,
        model: Any,
        temperature: float = 1.0,
        items: Sequence[Any] | None = None,
        exclude_seen: bool = False,
        n_samples: int = 1000,
        seed: int = 0,
        max_draws: int | None = None,
    ):
        if not float(temperature) > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        super().__init__(items, model, exclude_seen, seed)
        self.temperature = float(temperature)
        self.n_samples = int(n_samples)
        self.max_draws = _max_draws(max_draws, self.n_samples)

    def _log_probs(self, users: np.ndarray) -> np.ndarray:
        logits = self._model_scores(users) / self.temperature
        top = logits.max(1, keepdims=True)
        return logits - top - np.log(np.exp(logits - top).sum(1, keepdims=True))

    def _gumbel_topk(self, logp: np.ndarray, k: int, samples: int) -> np.ndarray:
        """``(n, samples, k)`` Plackett-Luce slates by the Gumbel top-k trick."""
        out = np.empty((len(logp), samples, k), dtype=np.int64)
        step = _users_per_chunk(samples * logp.shape[1])
        for s in range(0, len(logp), step):
            g = self.rng.gumbel(size=(len(logp[s : s + step]), samples, logp.shape[1]))
            out[s : s + step] = _topk(logp[s : s + step, None, :] + g, k)
        return out

    def _sample_idx(self, users, k):
        logp = self._log_probs(users)
        self._check_k(k, np.isfinite(logp))
        idx = self._gumbel_topk(logp, k, 1)[:, 0]
        return idx, np.take_along_axis(logp, idx, 1)

    def _propensities_idx(self, users, idx, drawn):
        logp = self._log_probs(users)
        p = np.exp(logp)
        shown = np.take_along_axis(p, idx, 1)
        left = 1.0 - np.concatenate([np.zeros((len(idx), 1)), np.cumsum(shown, 1)[:, :-1]], axis=1)
        casc = np.cumprod(shown / np.clip(left, 1e-300, None), axis=1)
        marg = shown.copy()
        if idx.shape[1] > 1:
            same, _ = _prefix_match(self._gumbel_topk(logp, idx.shape[1], self.n_samples), idx)
            extra = int(drawn)
            marg[:, 1:] = (same[:, :, 1:].sum(1) + extra) / (self.n_samples + extra)
        return marg, casc

    def _inverse_propensities_idx(self, users, idx, marg, casc):
        inv = 1.0 / marg
        if idx.shape[1] > 1:
            logp = self._log_probs(users)

            def hits_of(rows, s):
                return _prefix_match(self._gumbel_topk(logp[rows], idx.shape[1], s), idx[rows])[0][:, :, 1:]

            inv[:, 1:] = _geometric_counts(hits_of, len(idx), idx.shape[1] - 1, self.n_samples, self.max_draws)
        return inv, 1.0 / casc

    def _first_position_probs(self, users):
        return np.exp(self._log_probs(users))


# ---------------------------------------------------------------------------------------------- posterior sampling
class _SamplingPolicy(Policy):
    """Policies that rank by one draw of random scores (Thompson sampling); probabilities by Monte Carlo."""

    learns = True

    def _draw(self, users: np.ndarray, samples: int) -> np.ndarray:
        """``(n, samples, num_items)`` sampled scores; ``-inf`` for items a user may not be shown."""
        raise NotImplementedError

    def _draw_topk(self, users: np.ndarray, k: int, samples: int) -> tuple[np.ndarray, np.ndarray]:
        idx = np.empty((len(users), samples, k), dtype=np.int64)
        vals = np.empty((len(users), samples, k))
        step = _users_per_chunk(samples * self.num_items * 4)
        for s in range(0, len(users), step):
            v = self._draw(users[s : s + step], samples)
            idx[s : s + step] = _topk(v, k)
            vals[s : s + step] = np.take_along_axis(v, idx[s : s + step], -1)
        return idx, vals

    def _sample_idx(self, users, k):
        self._check_k(k, self._eligible(users))
        idx, vals = self._draw_topk(users, k, 1)
        return idx[:, 0], vals[:, 0]

    def _propensities_idx(self, users, idx, drawn):
        same, prefix = _prefix_match(self._draw_topk(users, idx.shape[1], self.n_samples)[0], idx)
        extra = int(drawn)
        return (same.sum(1) + extra) / (self.n_samples + extra), (prefix.sum(1) + extra) / (self.n_samples + extra)

    def _inverse_propensities_idx(self, users, idx, marg, casc):
        # Item-position marginals only: whole-slate probabilities are mostly far below 1 / max_draws (the counts
        # would be the cap, biased and ~10x the sampling cost), so no inverse_cascade_propensity (NaN -> None).
        def hits_of(rows, s):
            return _prefix_match(self._draw_topk(users[rows], idx.shape[1], s)[0], idx[rows])[0]

        counts = _geometric_counts(hits_of, len(idx), idx.shape[1], self.n_samples, self.max_draws)
        return counts, np.full(idx.shape, np.nan)

    def _first_position_probs(self, users):
        first = self._draw_topk(users, 1, self.n_samples)[0][:, :, 0]
        counts = np.zeros((len(users), self.num_items))
        np.add.at(counts, (np.repeat(np.arange(len(users)), self.n_samples), first.reshape(-1)), 1.0)
        return counts / self.n_samples

    def _masked(self, users: np.ndarray, values: np.ndarray) -> np.ndarray:
        mask = self._eligible(users)
        if mask is not None:
            values[~mask[:, None, :].repeat(values.shape[1], 1)] = -np.inf
        return values


class BetaThompsonPolicy(_SamplingPolicy):
    """Thompson sampling with a Beta-Bernoulli posterior per item (shared by all users).

    Args:
        items: candidate item ids (default: all of ``model``'s items).
        alpha, beta: the prior ``Beta(alpha, beta)`` of every item's reward rate (``mabwiser``'s default is 1, 1).
        model: optional; needed only for ``exclude_seen`` or to take the items from.
        exclude_seen: never show items the user interacted with in the model's training data.
        n_samples: Monte-Carlo draws for the probabilities.
        seed: random seed.
        max_draws: cap on the draws behind a served slate's inverse propensities (default ``10 * n_samples``).

    ``update`` takes rewards in ``[0, 1]``: an item's ``alpha`` grows by the reward, its ``beta`` by
    ``1 - reward`` (clicks are 0/1).
    """

    name = "beta_thompson"
    _reward_range = (0.0, 1.0)

    def __init__(
        self,
        items: Sequence[Any] | None = None,
        alpha: float = 1.0,
        beta: float = 1.0,
        model: Any = None,
        exclude_seen: bool = False,
        n_samples: int = 1000,
        seed: int = 0,
        max_draws: int | None = None,
    ):
        if not (alpha > 0 and beta > 0):
            raise ValueError(f"the Beta prior needs alpha > 0 and beta > 0, got {alpha}, {beta}.")
        super().__init__(items, model, exclude_seen, seed)
        self.alpha = np.full(self.num_items, float(alpha))
        self.beta = np.full(self.num_items, float(beta))
        self.n_samples = int(n_samples)
        self.max_draws = _max_draws(max_draws, self.n_samples)

    def _draw(self, users, samples):
        values = self.rng.beta(self.alpha, self.beta, size=(len(users), samples, self.num_items))
        return self._masked(users, values)

    def _update_idx(self, users, idx, rewards):
        np.add.at(self.alpha, idx, rewards)
        np.add.at(self.beta, idx, 1.0 - rewards)

    def posterior_mean(self) -> np.ndarray:
        """``(num_items,)`` posterior mean reward rate of every candidate."""
        return self.alpha / (self.alpha + self.beta)


# ---------------------------------------------------------------------------------------------- linear bandits
class _LinearModel:
    """A ridge-regression posterior per user over item feature vectors (the model's item embeddings).

    User ``u`` has ``A_u = l2_lambda I + sum x x^T`` and ``b_u = l2_lambda q_u + sum r x`` over the items ``x`` shown
    to them with rewards ``r``; ``theta_u = A_u^{-1} b_u``. The prior mean ``q_u`` is the model's own user vector
    (``prior="model"``, so an untouched user is ranked as the model ranks) or zero (``prior="zero"``). This is
    ``mabwiser``'s disjoint LinUCB / LinTS with one arm per user and the item vectors as contexts.
    """

    def _init_linear(self, item_features: Any, alpha: float, l2_lambda: float, prior: str | None) -> None:
        if not (alpha >= 0 and l2_lambda > 0):
            raise ValueError(f"need alpha >= 0 and l2_lambda > 0, got alpha={alpha}, l2_lambda={l2_lambda}.")
        if item_features is None:
            if self.model is None:
                raise ValueError(f"{type(self).__name__} needs item_features= or a model= with item embeddings.")
            import torch

            with torch.no_grad():
                emb = self.model.retrieval_embeddings().item_vectors(torch.as_tensor(self._model_idx))
            item_features = emb.float().cpu().numpy()
        self.features = np.asarray(item_features, dtype=np.float64)
        if self.features.shape[0] != self.num_items or self.features.ndim != 2:
            raise ValueError(
                f"item_features must have shape ({self.num_items}, d), one row per candidate, "
                f"got {self.features.shape}."
            )
        prior = prior or ("model" if self.model is not None else "zero")
        if prior not in ("model", "zero") or (prior == "model" and self.model is None):
            raise ValueError(f"prior must be 'zero' or 'model' (with a model=), got {prior!r}.")
        self.prior, self.alpha, self.l2_lambda = prior, float(alpha), float(l2_lambda)
        d = self.features.shape[1]
        self._slot: dict[Any, int] = {}
        self.A = np.zeros((0, d, d))
        self.b = np.zeros((0, d))
        self.A_inv = np.zeros((0, d, d))
        self.theta = np.zeros((0, d))

    def _prior_mean(self, users: np.ndarray) -> np.ndarray:
        d = self.features.shape[1]
        if self.prior == "zero":
            return np.zeros((len(users), d))
        import torch

        user_idx = torch.as_tensor(self.model._encode_users(list(users)))
        with torch.no_grad():
            q = self.model.retrieval_embeddings().user_queries(user_idx)[0].float().cpu().numpy()
        if q.shape[1] != d:
            raise ValueError(f"the model's user vectors have {q.shape[1]} dimensions, the item features {d}.")
        return q.astype(np.float64)

    def _posterior(self, users: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``theta (n, d)`` and ``A^{-1} (n, d, d)`` of each user (the prior for users without updates)."""
        d = self.features.shape[1]
        slots = np.array([self._slot.get(u, -1) for u in users.tolist()], dtype=np.int64)
        known = slots >= 0
        theta = np.empty((len(users), d))
        a_inv = np.broadcast_to(np.eye(d) / self.l2_lambda, (len(users), d, d)).copy()
        theta[known], a_inv[known] = self.theta[slots[known]], self.A_inv[slots[known]]
        if (~known).any():
            theta[~known] = self._prior_mean(users[~known])
        return theta, a_inv

    def _update_idx(self, users, idx, rewards):
        new = list(dict.fromkeys(u for u in users.tolist() if u not in self._slot))
        if new:
            d, start = self.features.shape[1], len(self._slot)
            self._slot.update({u: start + j for j, u in enumerate(new)})
            eye = np.broadcast_to(self.l2_lambda * np.eye(d), (len(new), d, d))
            self.A = np.concatenate([self.A, eye])
            self.b = np.concatenate([self.b, self.l2_lambda * self._prior_mean(np.asarray(new))])
            self.A_inv = np.concatenate([self.A_inv, eye / self.l2_lambda**2])
            self.theta = np.concatenate([self.theta, np.zeros((len(new), d))])
        slots = np.array([self._slot[u] for u in users.tolist()], dtype=np.int64)
        x = self.features[idx]
        np.add.at(self.A, slots, x[:, :, None] * x[:, None, :])
        np.add.at(self.b, slots, rewards[:, None] * x)
        touched = unique(slots)
        self.A_inv[touched] = np.linalg.inv(self.A[touched])
        self.theta[touched] = np.einsum("nde,ne->nd", self.A_inv[touched], self.b[touched])

    def expected_rewards(self, users: Any) -> np.ndarray:
        """``(n, num_items)`` posterior mean reward ``theta_u . x_i`` of every candidate."""
        theta, _ = self._posterior(np.asarray(users))
        return theta @ self.features.T


class LinUCBPolicy(_LinearModel, Policy):
    """LinUCB (Li et al., 2010) per user over item embeddings: top-``k`` of ``theta_u . x + alpha sqrt(x A_u^-1 x)``.

    Args:
        model: a fitted recommender with item embeddings (ALS, BPR, BiasedMF, two-tower, sequential), or ``None``
            with ``item_features``.
        items: candidate item ids (default: all of the model's items).
        item_features: ``(len(items), d)`` feature vectors of the candidates (default: the model's item embeddings).
        alpha: width of the confidence bound (0: greedy on the posterior mean).
        l2_lambda: ridge regularisation (prior precision).
        prior: ``"model"`` (default with a model: start from the model's user vector) or ``"zero"``.
        exclude_seen: never show items the user interacted with in training.
        seed: random seed (LinUCB itself is deterministic; ties go to the earlier candidate).

    Being deterministic, its propensities are 1 for its own slate and 0 for any other.
    """

    name = "linucb"
    learns = True

    def __init__(
        self,
        model: Any = None,
        items: Sequence[Any] | None = None,
        item_features: Any = None,
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        prior: str | None = None,
        exclude_seen: bool = False,
        seed: int = 0,
    ):
        Policy.__init__(self, items, model, exclude_seen, seed)
        self._init_linear(item_features, alpha, l2_lambda, prior)

    def upper_bounds(self, users: Any) -> np.ndarray:
        """``(n, num_items)`` the upper confidence bound of every candidate for every user (``-inf``: not eligible)."""
        users = np.asarray(users)
        out = np.empty((len(users), self.num_items))
        step = _users_per_chunk(self.features.size)
        for s in range(0, len(users), step):
            theta, a_inv = self._posterior(users[s : s + step])
            width = np.einsum("id,nde,ie->ni", self.features, a_inv, self.features, optimize=True)
            out[s : s + step] = theta @ self.features.T + self.alpha * np.sqrt(np.clip(width, 0, None))
        mask = self._eligible(users)
        if mask is not None:
            out[~mask] = -np.inf
        return out

    def _sample_idx(self, users, k):
        ucb = self.upper_bounds(users)
        self._check_k(k, np.isfinite(ucb))
        idx = _greedy(ucb, k)
        return idx, np.take_along_axis(ucb, idx, 1)

    def _propensities_idx(self, users, idx, drawn):
        if drawn:  # its own slate (deterministic): probability 1 everywhere, no second pass over the bounds
            ones = np.ones(idx.shape)
            return ones, ones.copy()
        same, prefix = _prefix_match(_greedy(self.upper_bounds(users), idx.shape[1])[:, None, :], idx)
        return same[:, 0].astype(np.float64), prefix[:, 0].astype(np.float64)

    def _first_position_probs(self, users):
        probs = np.zeros((len(users), self.num_items))
        probs[np.arange(len(users)), _greedy(self.upper_bounds(users), 1)[:, 0]] = 1.0
        return probs


class LinearThompsonPolicy(_LinearModel, _SamplingPolicy):
    """Linear Thompson sampling per user over item embeddings: ``theta ~ N(theta_u, alpha^2 A_u^-1)``, top-``k``.

    Args: as :class:`LinUCBPolicy`, plus ``n_samples`` (Monte-Carlo draws for the probabilities) and
    ``max_draws`` (cap on the draws behind a served slate's inverse propensities; default ``10 * n_samples``).
    """

    name = "linear_thompson"

    def __init__(
        self,
        model: Any = None,
        items: Sequence[Any] | None = None,
        item_features: Any = None,
        alpha: float = 1.0,
        l2_lambda: float = 1.0,
        prior: str | None = None,
        exclude_seen: bool = False,
        n_samples: int = 1000,
        seed: int = 0,
        max_draws: int | None = None,
    ):
        Policy.__init__(self, items, model, exclude_seen, seed)
        self._init_linear(item_features, alpha, l2_lambda, prior)
        self.n_samples = int(n_samples)
        self.max_draws = _max_draws(max_draws, self.n_samples)

    def _draw(self, users, samples):
        theta, a_inv = self._posterior(users)
        chol = np.linalg.cholesky(a_inv)
        z = self.rng.standard_normal((len(users), samples, theta.shape[1]))
        beta = theta[:, None, :] + self.alpha * np.einsum("nde,nse->nsd", chol, z)
        return self._masked(users, beta @ self.features.T)
