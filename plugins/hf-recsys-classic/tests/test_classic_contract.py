"""Every classic model joins the shared recommender contract with one test class."""

from hf_recsys.testing_utils import RecommenderContractTests


class TestItemKNNContract(RecommenderContractTests):
    model_type = "item_knn"
    config_kwargs = {"k": 10, "shrink": 1.0}
    check_similar_items = True


class TestUserKNNContract(RecommenderContractTests):
    model_type = "user_knn"
    config_kwargs = {"k": 10, "weighting": "bm25"}


class TestEASEContract(RecommenderContractTests):
    model_type = "ease"
    config_kwargs = {"l2": 10.0}
    check_similar_items = True


class TestALSContract(RecommenderContractTests):
    model_type = "als"
    config_kwargs = {"factors": 8, "iterations": 5}
    check_similar_items = True


class TestBPRMFContract(RecommenderContractTests):
    model_type = "bprmf"
    config_kwargs = {"factors": 8, "epochs": 5, "batch_size": 64, "fold_in_steps": 10}
    check_similar_items = True


class TestBiasedMFContract(RecommenderContractTests):
    model_type = "biased_mf"
    config_kwargs = {"factors": 8, "epochs": 5, "batch_size": 64}
    check_similar_items = True


class TestNeuMFContract(RecommenderContractTests):
    model_type = "neumf"
    config_kwargs = {"factors": 8, "mlp_layers": [16, 8], "epochs": 3, "batch_size": 256}
    check_similar_items = True
