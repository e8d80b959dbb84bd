"""Every fusion model (and the content member) joins the shared recommender contract with one test class."""

from fusion_test_utils import content_features
from hf_recsys.data import temporal_user_split
from hf_recsys.testing_utils import RecommenderContractTests

CF_MEMBERS = [
    {"name": "ease", "model_type": "ease", "l2": 10.0},
    {"name": "als", "model_type": "als", "factors": 8, "iterations": 5},
    {"name": "knn", "model_type": "item_knn", "k": 10},
]


def _tune_then_refit(model, log):
    """Fit members on the earlier part, tune the fusion on the later part, then refit the members on all of it."""
    split = temporal_user_split(log, test_ratio=0.25)
    model.fit(split["train"].to_pandas(), validation=split["test"].to_pandas(), show_progress=False, metric="ndcg@5")
    return model.fit(log, show_progress=False)


class TestWeightedFusionContract(RecommenderContractTests):
    model_type = "weighted_fusion"
    config_kwargs = {"members": CF_MEMBERS, "weight_grid": [0.0, 0.5, 1.0], "max_rounds": 1}

    @classmethod
    def fit_model(cls, model, log):
        return _tune_then_refit(model, log)


class TestRankFusionContract(RecommenderContractTests):
    model_type = "rank_fusion"
    config_kwargs = {"members": CF_MEMBERS, "method": "rrf", "top_n": 20}


class TestStackingFusionContract(RecommenderContractTests):
    model_type = "stacking_fusion"
    config_kwargs = {"members": CF_MEMBERS, "top_n": 20, "max_iter": 50}

    @classmethod
    def fit_model(cls, model, log):
        return _tune_then_refit(model, log)


class TestSwitchingFusionContract(RecommenderContractTests):
    model_type = "switching_fusion"
    config_kwargs = {
        "members": [CF_MEMBERS[0], {"name": "content", "model_type": "item_content"}],
        "min_user_interactions": 3,
        "cold_item_weight": 0.5,
    }

    @classmethod
    def fit_model(cls, model, log):
        ids, feats = content_features(log)
        kwargs = {"content": {"item_ids": ids, "item_features": feats}}
        return model.fit(log, show_progress=False, member_fit_kwargs=kwargs)


class TestItemContentContract(RecommenderContractTests):
    model_type = "item_content"
    check_similar_items = True

    @classmethod
    def fit_model(cls, model, log):
        ids, feats = content_features(log)
        return model.fit(log, show_progress=False, item_ids=ids, item_features=feats)
