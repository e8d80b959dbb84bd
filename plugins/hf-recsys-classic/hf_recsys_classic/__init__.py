"""hf-recsys-classic: classic recommenders (ItemKNN, UserKNN, EASE, ALS, BPRMF, BiasedMF, NeuMF) for hf-recsys.

The models register through the ``hf_recsys.models`` entry points of this distribution, so after
``pip install hf-recsys-classic`` they load with ``AutoModelForRecommendation`` and ``transformers.AutoModel``.
"""

from .als import ALSConfig, ALSModel
from .biased_mf import BiasedMFConfig, BiasedMFModel
from .bprmf import BPRMFConfig, BPRMFModel
from .ease import EASEConfig, EASEModel
from .item_knn import ItemKNNConfig, ItemKNNModel
from .neumf import NeuMFConfig, NeuMFModel
from .user_knn import UserKNNConfig, UserKNNModel

__version__ = "0.1.0"

__all__ = [
    "ALSConfig",
    "ALSModel",
    "BPRMFConfig",
    "BPRMFModel",
    "BiasedMFConfig",
    "BiasedMFModel",
    "EASEConfig",
    "EASEModel",
    "ItemKNNConfig",
    "ItemKNNModel",
    "NeuMFConfig",
    "NeuMFModel",
    "UserKNNConfig",
    "UserKNNModel",
]
