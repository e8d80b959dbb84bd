"""The model families the Hub round-trip tests push and pull: add ONE row per family.

A row names a registered ``model_type``, its config options and ``fit`` options; a family that needs more than
``fit(log, **fit_kwargs)`` (item content, a backbone) names a ``builder``, ``"module:function"``, that returns a
fitted model from a ``tiny_log()`` DataFrame. Rows whose model type is not installed are skipped.
"""

from __future__ import annotations

HUB_CASES: list[dict] = [
    # the core's reference family
    {"name": "most-popular", "model_type": "most_popular", "config_kwargs": {"weighting": "users"}},
    # the classic plugin (plugins/hf-recsys-classic): a closed-form and a neighbourhood model
    {"name": "ease", "model_type": "ease", "config_kwargs": {"l2": 10.0}},
    {"name": "item-knn", "model_type": "item_knn", "config_kwargs": {"k": 10, "shrink": 1.0}},
    # the core's backbone families: a tiny GPT-style sequential recommender trained for two epochs
    {
        "name": "causal-sequential",
        "model_type": "causal_sequential",
        "config_kwargs": {"max_sequence_length": 8, "hidden_size": 16, "num_heads": 2, "num_layers": 1},
        "fit_kwargs": {"epochs": 2},
    },
    # the fusion plugin (plugins/hf-recsys-fusion): members are pushed as sub-folders of the same repo
    {
        "name": "weighted-fusion",
        "model_type": "weighted_fusion",
        "config_kwargs": {
            "members": [
                {"name": "ease", "model_type": "ease", "l2": 10.0},
                {"name": "pop", "model_type": "most_popular"},
            ]
        },
    },
    # a backbone family with a LoRA adapter: the repo holds adapter + heads, loading rebuilds the backbone from
    # base_model (here the offline all-MiniLM-L6-v2 folder; the card names its Hub id)
    {
        "name": "two-tower-lora",
        "model_type": "two_tower",
        "builder": "hub_builders:two_tower_lora",
        "card_kwargs": {"base_model": "sentence-transformers/all-MiniLM-L6-v2"},
    },
]

__all__ = ["HUB_CASES"]
