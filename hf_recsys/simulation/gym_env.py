"""The simulator as a ``gymnasium.Env``: one session per episode (gymnasium is the optional ``sim`` extra)."""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import gymnasium
    from gymnasium import spaces
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'The gymnasium environment needs gymnasium: pip install "hf-recsys[sim]". The vectorised UserSimulator '
        "itself works without it."
    ) from exc


class SimulatorEnv(gymnasium.Env):
    """One simulated session per episode of a :class:`~hf_recsys.simulation.UserSimulator`.

    The action is a slate of ``slate_size`` distinct item indices (``MultiDiscrete``; a slate with an item twice
    raises ``ValueError``); the observation is ``{"user", "step", "clicks"}`` of that session; the reward is 1.0 for
    a click. ``reset(seed=..., options={"user": u})`` picks the user (default: one drawn uniformly).
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, simulator):
        self.simulator = simulator
        cfg = simulator.config
        self.observation_space = spaces.Dict(
            {
                "user": spaces.Discrete(simulator.num_users),
                "step": spaces.Discrete(cfg.max_steps + 1),
                "clicks": spaces.Box(-1, simulator.num_items - 1, shape=(cfg.max_steps,), dtype=np.int64),
            }
        )
        self.action_space = spaces.MultiDiscrete(np.full(cfg.slate_size, simulator.num_items))

    @staticmethod
    def _single(obs: dict) -> dict:
        return {"user": int(obs["user"][0]), "step": int(obs["step"][0]), "clicks": obs["clicks"][0]}

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        user = options.pop("user", None)
        if options:
            raise ValueError(f"unknown reset options {sorted(options)}; use 'user'.")
        if user is None:
            user = int(self.np_random.integers(0, self.simulator.num_users))
        sub_seed = int(self.np_random.integers(0, 2**63 - 1))
        obs, info = self.simulator.reset(seed=sub_seed, options={"users": np.array([user])})
        return self._single(obs), {}

    def step(self, action):
        slate = np.asarray(action, dtype=np.int64).reshape(1, -1)
        obs, reward, terminated, truncated, info = self.simulator.step(slate)
        single = {k: v[0] for k, v in info.items()}
        return self._single(obs), float(reward[0]), bool(terminated[0]), bool(truncated[0]), single


__all__ = ["SimulatorEnv"]
