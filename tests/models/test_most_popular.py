import numpy as np
import pandas as pd
import pytest

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.testing_utils import RecommenderContractTests


class TestMostPopularContract(RecommenderContractTests):
    model_type = "most_popular"


def _log():
    return pd.DataFrame(
        {
            "user_id": ["a", "a", "b", "b", "c", "c", "c"],
            "item_id": [1, 2, 2, 2, 3, 2, 1],
            "rating": [5.0, 4, 3, 3, 2, 1, 5],
            "timestamp": [0, 86400, 2 * 86400, 3 * 86400, 4 * 86400, 5 * 86400, 10 * 86400],
        }
    )


@pytest.mark.parametrize(
    "weighting, expected",
    [("count", [2, 4, 1]), ("users", [2, 3, 1]), ("rating", [10, 11, 2])],
)
def test_weightings(weighting, expected):
    model = MostPopularModel(MostPopularConfig(weighting=weighting)).fit(_log())
    np.testing.assert_allclose(model.item_scores.numpy(), expected)


def test_half_life_discounts_old_interactions():
    model = MostPopularModel(MostPopularConfig(half_life_days=1.0)).fit(_log())
    ages = np.array([10, 9, 8, 7, 6, 5, 0])
    w = 0.5**ages
    np.testing.assert_allclose(model.item_scores.numpy(), [w[0] + w[6], w[1] + w[2] + w[3] + w[5], w[4]], rtol=1e-6)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="weighting"):
        MostPopularConfig(weighting="clicks")
    with pytest.raises(ValueError, match="half_life_days"):
        MostPopularConfig(half_life_days=-1)
    with pytest.raises(ValueError, match="rating"):
        MostPopularModel(MostPopularConfig(weighting="rating")).fit(_log().drop(columns="rating"))
