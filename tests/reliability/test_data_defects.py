"""Ids, timestamps and ratings (issue 15, defects 7, 8, 9): an exact round trip or a clear error, checked before any
work; a fit that would score NaN for everyone is refused; one-item / one-user KNN models do not crash."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import load_interactions
from hf_recsys.testing_utils import tiny_log


def load_csv(tmp_path, text: str, **kwargs):
    path = tmp_path / "log.csv"
    path.write_text(text)
    return load_interactions(path, **kwargs)


# ---------------------------------------------------------------------------------------------- defect 7
def test_defect7_integers_beyond_2_53_round_trip_exactly(tmp_path):
    ds = load_csv(tmp_path, "user_id,item_id\n9007199254740993,1\n9007199254740992,2\n")
    assert ds["user_id"] == [9007199254740993, 9007199254740992]


@pytest.mark.parametrize(
    "column",
    [
        "9007199254740993\n2.0",  # a float column: 2^53 + 1 would become 2^53
        "99999999999999999999\n1",  # beyond int64: would become INT64_MIN
        "18446744073709551615\n1",  # beyond int64
        "1.0\n1",  # would merge with 1
    ],
)
def test_defect7_ids_that_cannot_round_trip_are_refused(tmp_path, column):
    users = column.split("\n")
    text = "user_id,item_id\n" + "".join(f"{u},{i}\n" for i, u in enumerate(users))
    with pytest.raises(ValueError, match="user_id"):
        load_csv(tmp_path, text)


def test_defect7_ids_are_kept_as_text_when_read_as_text(tmp_path):
    ds = load_csv(tmp_path, "user_id,item_id\n1.0,1\n1,2\n", id_dtype="string")
    assert ds["user_id"] == ["1.0", "1"]  # two users, exactly as written


@pytest.mark.parametrize("spelling", ["None", "null", "NaN", "N/A"])
def test_defect7_missing_value_spellings_are_not_ids(tmp_path, spelling):
    with pytest.raises(ValueError, match="missing value"):
        load_csv(tmp_path, f"user_id,item_id\nalice,1\n{spelling},2\n")


# ---------------------------------------------------------------------------------------------- defect 8
def frame(**cols):
    return pd.DataFrame({"user_id": [1, 2], "item_id": [10, 20], **cols})


@pytest.mark.parametrize(
    "values, seconds",
    [
        (["1500-01-01", "2000-01-01T00:00:00Z"], [-14831769600, 946684800]),  # wrapped to 2084 before
        ([dt.datetime(1500, 1, 1), dt.datetime(2000, 1, 1)], [-14831769600, 946684800]),
        ([dt.date(2300, 1, 1), dt.date(2000, 1, 1)], [10413792000, 946684800]),
    ],
)
def test_defect8_dates_outside_1677_2262_are_exact(values, seconds):
    assert load_interactions(frame(timestamp=values))["timestamp"] == seconds


@pytest.mark.parametrize("values", [[1e20, 1.0], [1_600_000_000_000, 1_600_000_000_001]])
def test_defect8_out_of_range_or_millisecond_timestamps_are_refused_up_front(values):
    with pytest.raises(ValueError, match="timestamp.*outside the years 1-9999.*timestamp_unit='ms'"):
        load_interactions(frame(timestamp=values))
    ms = load_interactions(frame(timestamp=[1_600_000_000_000, 1_600_000_000_001]), timestamp_unit="ms")
    assert ms["timestamp"] == [1_600_000_000, 1_600_000_000]


# ---------------------------------------------------------------------------------------------- defect 9
@pytest.mark.parametrize("rating", [1e300, -1e39])
def test_defect9_ratings_beyond_float32_are_refused(rating):
    with pytest.raises(ValueError, match="rating"):
        load_interactions(frame(rating=[rating, 1.0]))


@pytest.mark.parametrize("model_type, kwargs", [("als", {"feedback": "rating"}), ("biased_mf", {})])
def test_defect9_one_extreme_rating_does_not_make_every_score_nan(model_type, kwargs):
    log = tiny_log()
    log.loc[0, "rating"] = 1e30
    try:
        model = AutoModelForRecommendation.for_model(model_type, **kwargs).fit(log, show_progress=False)
    except FloatingPointError as exc:  # refused, naming the cause
        assert "ratings span" in str(exc)
        return
    scores = model.recommend(list(model.user_vocab.ids), k=3)[1]
    assert np.isfinite(scores).all()


# ---------------------------------------------------------------------------------------------- raw tracebacks
@pytest.mark.parametrize(
    "model_type, log",
    [("item_knn", {"user_id": [1, 2], "item_id": [5, 5]}), ("user_knn", {"user_id": [1, 1], "item_id": [5, 6]})],
)
def test_knn_with_one_item_or_one_user_does_not_crash(model_type, log):
    model = AutoModelForRecommendation.for_model(model_type).fit(pd.DataFrame(log), show_progress=False)
    ids, scores = model.recommend([1], k=2)
    assert ids.shape[0] == 1 and scores.shape == ids.shape
