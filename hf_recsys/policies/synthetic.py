"""A synthetic contextual bandit with known expected rewards, for checking off-policy estimators.

Contexts ``x ~ N(0, I_dim)``; the expected (Bernoulli) reward of action ``a`` is
``q(x, a) = sigmoid(x . theta_a + bias_a)``; the logging policy is ``softmax(beta * x . W_a)``, a linear
policy unrelated to the rewards, as in Open Bandit Pipeline's ``SyntheticBanditDataset`` with
``logistic_reward_function`` and ``linear_behavior_policy``. The true value of any policy is its mean expected
reward over fresh contexts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .ope import OPEInputs

__all__ = ["SyntheticBandit"]


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


@dataclass
class SyntheticBandit:
    """A contextual bandit with logistic rewards and a linear softmax logging policy.

    Args:
        n_actions: number of actions.
        dim: context dimension.
        beta: inverse temperature of the logging policy (0: uniform).
        seed: seed of the bandit's parameters.
    """

    n_actions: int = 30
    dim: int = 5
    beta: float = 1.0
    seed: int = 0

    def __post_init__(self):
        rng = np.random.default_rng(self.seed)
        self.theta = rng.normal(size=(self.n_actions, self.dim))
        self.bias = rng.normal(size=self.n_actions)
        self.behaviour_weights = rng.normal(size=(self.n_actions, self.dim))

    def contexts(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return rng.normal(size=(n, self.dim))

    def expected_rewards(self, contexts: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` expected reward of every action."""
        return 1.0 / (1.0 + np.exp(-(contexts @ self.theta.T + self.bias)))

    def behaviour_probs(self, contexts: np.ndarray) -> np.ndarray:
        """``(n, n_actions)`` the logging policy's action distribution."""
        return _softmax(self.beta * contexts @ self.behaviour_weights.T)

    def greedy_target(self, epsilon: float = 0.1) -> Callable[[np.ndarray], np.ndarray]:
        """An epsilon-greedy policy on the true expected rewards (a good target policy)."""

        def probs(contexts: np.ndarray) -> np.ndarray:
            q = self.expected_rewards(contexts)
            out = np.full(q.shape, epsilon / self.n_actions)
            out[np.arange(len(q)), q.argmax(1)] += 1 - epsilon
            return out

        return probs

    def policy_value(self, policy: Callable[[np.ndarray], np.ndarray], n: int = 1_000_000, seed: int = 12345) -> float:
        """Ground truth: the mean expected reward of ``policy`` over ``n`` fresh contexts."""
        rng, total = np.random.default_rng(seed), 0.0
        for start in range(0, n, 100_000):
            x = self.contexts(min(100_000, n - start), rng)
            total += float((policy(x) * self.expected_rewards(x)).sum())
        return total / n

    def log(self, n_rounds: int, seed: int) -> dict[str, np.ndarray]:
        """Logged feedback: ``contexts``, ``actions``, binary ``rewards``, ``p_log`` of the chosen actions."""
        rng = np.random.default_rng(seed)
        x = self.contexts(n_rounds, rng)
        probs = self.behaviour_probs(x)
        actions = (probs.cumsum(1) > rng.random((n_rounds, 1))).argmax(1)
        q = self.expected_rewards(x)[np.arange(n_rounds), actions]
        rewards = (rng.random(n_rounds) < q).astype(np.float64)
        return {"contexts": x, "actions": actions, "rewards": rewards, "p_log": probs[np.arange(n_rounds), actions]}

    def ope_inputs(
        self,
        logged: dict[str, np.ndarray],
        policy: Callable[[np.ndarray], np.ndarray],
        q_hat: np.ndarray | None = None,
    ) -> OPEInputs:
        """:class:`OPEInputs` of a target ``policy`` on ``logged`` rounds, with an optional ``(n, n_actions)``
        reward model ``q_hat``."""
        rows = np.arange(len(logged["actions"]))
        pi = policy(logged["contexts"])
        col = lambda v: v[:, None]  # noqa: E731
        return OPEInputs(
            reward=col(logged["rewards"]),
            p_log=col(logged["p_log"]),
            p_target=col(pi[rows, logged["actions"]]),
            q_logged=None if q_hat is None else col(q_hat[rows, logged["actions"]]),
            q_target=None if q_hat is None else (pi * q_hat).sum(1),
        )
