"""Exploration policies over any recommender, logged slates, and off-policy estimators.

See the README section "Exploration and off-policy evaluation".
"""

from .bandits import BetaThompsonPolicy, EpsilonGreedyPolicy, LinearThompsonPolicy, LinUCBPolicy, SoftmaxPolicy
from .base import Policy, Slates, check_rewards

__all__ = [
    "BetaThompsonPolicy",
    "EpsilonGreedyPolicy",
    "LinUCBPolicy",
    "LinearThompsonPolicy",
    "Policy",
    "SoftmaxPolicy",
    "Slates",
    "check_rewards",
]
