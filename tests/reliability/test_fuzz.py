"""Property-based tests (hypothesis): the loaders over generated ids, timestamps and ratings round-trip exactly or
raise a clear error, never change a value silently; the recommend contract holds over generated logs and calls.

Bounded and deterministic: ``derandomize=True`` (the same examples on every run), few examples, no deadline.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_recsys import AutoModelForRecommendation, MostPopularConfig, MostPopularModel
from hf_recsys.data import DataValidationError, load_interactions

FUZZ = settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
WIDE_INT = st.one_of(INT64, st.integers(min_value=-(2**70), max_value=2**70))
TEXT_ID = st.text(st.characters(exclude_categories=("Cs", "Cc")), min_size=1, max_size=12)


def _frame(user_ids, item_ids=None, **extra) -> pd.DataFrame:
    n = len(user_ids)
    return pd.DataFrame(
        {"user_id": user_ids, "item_id": item_ids if item_ids is not None else list(range(n)), **extra}
    )


def _load(df, **kwargs):
    try:
        return load_interactions(df, duplicates="keep", **kwargs)
    except (DataValidationError, ValueError, TypeError, OverflowError) as exc:
        assert str(exc), "an error must say what is wrong"
        return None


@FUZZ
@given(st.lists(WIDE_INT, min_size=1, max_size=8))
def test_integer_ids_round_trip_or_are_refused(ids):
    df = pd.DataFrame({"user_id": pd.Series(ids, dtype=object), "item_id": range(len(ids))})
    try:
        df["user_id"] = df["user_id"].astype("int64")  # what a user's frame holds when the ids fit
    except (OverflowError, ValueError):
        pass
    ds = _load(df)
    if ds is not None:
        assert ds["user_id"] == ids, "integer ids must come back exactly"


@FUZZ
@given(st.lists(st.one_of(INT64, TEXT_ID), min_size=1, max_size=8), st.sampled_from([",", "\t"]))
def test_ids_through_a_text_file_round_trip_or_are_refused(tmp_path_factory, ids, sep):
    ids = [str(i) for i in ids]
    if any(sep in i or '"' in i or "\n" in i or "\r" in i or i != i.strip() for i in ids):
        return  # not representable in an unquoted delimited file
    path = tmp_path_factory.mktemp("fuzz") / ("log.csv" if sep == "," else "log.tsv")
    path.write_text("user_id" + sep + "item_id\n" + "".join(f"{u}{sep}{k}\n" for k, u in enumerate(ids)))
    for id_dtype in (None, "string"):
        try:
            ds = load_interactions(path, duplicates="keep", id_dtype=id_dtype)
        except (DataValidationError, ValueError) as exc:
            assert "user_id" in str(exc) or "item_id" in str(exc) or "parse" in str(exc), str(exc)
            continue
        got = [str(u) for u in ds["user_id"]]
        assert got == ids, f"ids changed: {ids} -> {got} (id_dtype={id_dtype})"


@FUZZ
@given(st.lists(st.one_of(WIDE_INT, st.floats(allow_nan=True, allow_infinity=True)), min_size=1, max_size=6))
def test_timestamps_are_exact_seconds_or_refused(values):
    ints = all(isinstance(v, int) for v in values)
    column = pd.Series(values, dtype="int64") if ints and all(-(2**63) <= v < 2**63 for v in values) else values
    ds = _load(_frame(list(range(len(values))), timestamp=column))
    if ds is None:
        return
    for v, got in zip(values, ds["timestamp"], strict=True):
        assert math.floor(v) == got, f"timestamp {v!r} became {got}"
        assert -62_135_596_800 <= got <= 253_402_300_799


@FUZZ
@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=1, max_size=6))
def test_ratings_are_exact_float32_or_refused(values):
    ds = _load(_frame(list(range(len(values))), rating=values))
    if ds is None:
        assert not all(math.isfinite(v) and abs(v) <= np.finfo(np.float32).max for v in values)
        return
    got = np.asarray(ds["rating"], dtype=np.float32)
    assert np.isfinite(got).all()
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got, np.asarray(values, dtype=np.float32))


# ---------------------------------------------------------------------------------------------- recommend
LOGS = st.lists(st.tuples(st.integers(0, 12), st.integers(0, 9)), min_size=1, max_size=60).map(
    lambda rows: pd.DataFrame(rows, columns=["user_id", "item_id"]).drop_duplicates()
)


@FUZZ
@given(LOGS, st.integers(1, 15), st.booleans(), st.data())
def test_recommend_contract(log, k, exclude_seen, data):
    model = MostPopularModel(MostPopularConfig()).fit(log, show_progress=False)
    users = data.draw(st.lists(st.sampled_from(sorted(log["user_id"].unique())), min_size=1, max_size=5))
    ids, scores = model.recommend(users, k=k, exclude_seen=exclude_seen)
    n_items = log["item_id"].nunique()
    assert ids.shape == scores.shape == (len(users), min(k, n_items))
    assert set(np.unique(ids)) <= set(log["item_id"])
    for row, u in enumerate(users):
        assert len(set(ids[row].tolist())) == ids.shape[1], "an item appears twice in one ranking"
        finite = np.isfinite(scores[row])
        assert not np.any(finite[1:] & ~finite[:-1]), "-inf filler comes after every real item"
        assert np.all(np.diff(scores[row][finite]) <= 0), "scores must be sorted, best first"
        if exclude_seen:
            seen = set(log.loc[log["user_id"] == u, "item_id"])
            real = ids[row][np.isfinite(scores[row])]
            assert not seen & set(real.tolist()), "a seen item was recommended"


@settings(max_examples=8, derandomize=True, deadline=None)
@given(LOGS)
def test_save_load_round_trip_keeps_every_recommendation(log):
    import tempfile

    model = MostPopularModel(MostPopularConfig()).fit(log, show_progress=False)
    users = sorted(log["user_id"].unique())
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        loaded = AutoModelForRecommendation.from_pretrained(d)
    for a, b in zip(model.recommend(users, k=5), loaded.recommend(users, k=5), strict=True):
        np.testing.assert_array_equal(a, b)


def test_empty_log_is_a_clear_error():
    with pytest.raises(DataValidationError, match="no rows"):
        load_interactions(pd.DataFrame({"user_id": [], "item_id": []}))


@FUZZ
@given(
    st.lists(st.sampled_from(["..", ".", "a", "b.json", "", "/", "\\", "~", "C:", "x\x00"]), min_size=1, max_size=5)
)
def test_manifest_names_never_leave_the_folder(parts):
    import os

    from hf_recsys.serialization import UnsafeCheckpointError, safe_member

    name = "/".join(parts)
    root = "/srv/model"
    try:
        safe_member(root, name)
    except UnsafeCheckpointError:
        return
    resolved = os.path.normpath(os.path.join(root, name))
    assert os.path.commonpath([resolved, root]) == root and resolved != root, name
