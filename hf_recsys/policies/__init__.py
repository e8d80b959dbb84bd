"""Exploration policies over any recommender, logged slates, and off-policy estimators.

See the README section "Exploration and off-policy evaluation".
"""

from .bandits import BetaThompsonPolicy, EpsilonGreedyPolicy, LinearThompsonPolicy, LinUCBPolicy, SoftmaxPolicy
from .base import Policy, Slates, check_rewards
from .ope import (
    ESTIMATORS,
    OPEInputs,
    OPEReport,
    bootstrap_interval,
    clopper_pearson_interval,
    estimate,
    evaluate_policy,
    gaussian_interval,
    ope_inputs,
)
from .synthetic import SyntheticBandit

__all__ = [
    "ESTIMATORS",
    "BetaThompsonPolicy",
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "LinearThompsonPolicy",
    "OPEInputs",
    "OPEReport",
    "Policy",
    "SoftmaxPolicy",
    "Slates",
    "SyntheticBandit",
    "bootstrap_interval",
    "check_rewards",
    "clopper_pearson_interval",
    "estimate",
    "evaluate_policy",
    "gaussian_interval",
    "ope_inputs",
]
