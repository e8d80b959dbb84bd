"""The user simulator: sessions of simulated users built from a model fitted on a real log, to compare policies
before they meet users (see :mod:`hf_recsys.simulation.simulator` for the choice model)."""

from .rollout import GreedyAgent, PolicyAgent, SessionResults, SessionState, mean_interval, run_sessions
from .simulator import (
    SimulatorConfig,
    UserSimulator,
    hashed_uniforms,
    item_genre_matrix,
    model_relevance,
    standardise_rows,
)

__all__ = [
    "GreedyAgent",
    "PolicyAgent",
    "SessionResults",
    "SessionState",
    "mean_interval",
    "run_sessions",
    "SimulatorConfig",
    "UserSimulator",
    "hashed_uniforms",
    "item_genre_matrix",
    "model_relevance",
    "standardise_rows",
]
