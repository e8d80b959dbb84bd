"""hf-recsys: recommender systems as Hugging Face models."""

from .auto import AutoModelForRecommendation, AutoRecConfig
from .configuration_utils import RecConfig
from .data import generate_interactions, leave_last_out, load_interactions, load_items, load_movielens
from .data.vocab import IdVocab, UnknownIdError
from .evaluation import compare, evaluate_model
from .modeling_utils import NotFittedError, RecommenderOutput, RecPreTrainedModel
from .models.most_popular import MostPopularConfig, MostPopularModel
from .models.sequential import (
    CausalSequentialConfig,
    CausalSequentialRecommender,
    MaskedSequentialConfig,
    MaskedSequentialRecommender,
)
from .models.two_tower import TwoTowerConfig, TwoTowerModel
from .pipelines import register_pipeline
from .registry import get_model_spec, install_transformers_hook, list_models, plugin_errors, register_model

__version__ = "0.1.0"

# transformers.AutoConfig/AutoModel resolve hf-recsys model types (plugins included, loaded lazily)
install_transformers_hook()
# pipeline("recommendation", model=...) works after `import hf_recsys`
register_pipeline()

__all__ = [
    "AutoModelForRecommendation",
    "AutoRecConfig",
    "CausalSequentialConfig",
    "CausalSequentialRecommender",
    "MaskedSequentialConfig",
    "MaskedSequentialRecommender",
    "IdVocab",
    "MostPopularConfig",
    "MostPopularModel",
    "NotFittedError",
    "RecConfig",
    "RecPreTrainedModel",
    "RecommenderOutput",
    "TwoTowerConfig",
    "TwoTowerModel",
    "UnknownIdError",
    "compare",
    "evaluate_model",
    "generate_interactions",
    "leave_last_out",
    "load_interactions",
    "load_items",
    "load_movielens",
    "get_model_spec",
    "list_models",
    "plugin_errors",
    "register_model",
]


def __getattr__(name: str):
    """``hf_recsys.metrics`` (the ``evaluate`` modules) without a separate ``import hf_recsys.metrics``."""
    if name == "metrics":
        import importlib

        return importlib.import_module(".metrics", __name__)
    raise AttributeError(f"module 'hf_recsys' has no attribute {name!r}")
