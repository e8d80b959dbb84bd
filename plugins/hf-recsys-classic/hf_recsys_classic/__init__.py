"""hf-recsys-classic: classic recommenders (ItemKNN, UserKNN, EASE, ALS, BPRMF, BiasedMF, NeuMF) for hf-recsys.

The models register through the ``hf_recsys.models`` entry points of this distribution, so after
``pip install hf-recsys-classic`` they load with ``AutoModelForRecommendation`` and ``transformers.AutoModel``.
"""

from hf_recsys.registry import lazy_exports

# imported on first use: looking up one model type imports that family only
_EXPORTS = {
    "ALSConfig": ".als",
    "ALSModel": ".als",
    "BiasedMFConfig": ".biased_mf",
    "BiasedMFModel": ".biased_mf",
    "BPRMFConfig": ".bprmf",
    "BPRMFModel": ".bprmf",
    "EASEConfig": ".ease",
    "EASEModel": ".ease",
    "ItemKNNConfig": ".item_knn",
    "ItemKNNModel": ".item_knn",
    "NeuMFConfig": ".neumf",
    "NeuMFModel": ".neumf",
    "UserKNNConfig": ".user_knn",
    "UserKNNModel": ".user_knn",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
