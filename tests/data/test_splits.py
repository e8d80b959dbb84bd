"""Splits and k-core filtering, each checked against a plain pandas reference implementation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from hf_recsys.data import (
    global_temporal_split,
    kcore_filter,
    leave_last_out,
    random_split,
    temporal_user_split,
)


def _log(n=3000, users=120, items=80, ts_range=40, seed=0, string_users=False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    u = rng.zipf(1.6, n) % users
    df = pd.DataFrame(
        {
            "user_id": [f"u{x}" for x in u] if string_users else u,
            "item_id": rng.integers(0, items, n),
            "timestamp": rng.integers(0, ts_range, n),  # many ties: order must fall back to log order
        }
    )
    df["row"] = np.arange(n)
    return df


def _rank_from_end(df: pd.DataFrame) -> pd.Series:
    keys = ["user_id", "timestamp", "row"] if "timestamp" in df else ["user_id", "row"]
    s = df.sort_values(keys)
    return s.groupby("user_id").cumcount(ascending=False).reindex(df.index)


def _rows(ds) -> list[int]:
    return ds["row"]


@pytest.mark.parametrize("n_test, n_val", [(1, 0), (1, 1), (2, 1), (3, 1), (5, 0), (2, 3)])
@pytest.mark.parametrize("string_users", [False, True])
def test_leave_last_out_matches_reference(n_test, n_val, string_users):
    df = _log(string_users=string_users)
    splits = leave_last_out(df, n_test=n_test, n_validation=n_val)
    rank = _rank_from_end(df)
    count = df.groupby("user_id")["row"].transform("size")
    eligible = count > n_test + n_val
    exp_test = df.row[eligible & (rank < n_test)].tolist()
    exp_val = df.row[eligible & (rank >= n_test) & (rank < n_test + n_val)].tolist()
    assert _rows(splits["test"]) == exp_test  # log order kept within the part
    if n_val:
        assert _rows(splits["validation"]) == exp_val
    else:
        assert "validation" not in splits
    assert _rows(splits["train"]) == sorted(set(df.row) - set(exp_test) - set(exp_val))
    # per-user ordering: nothing in train is later than the user's test rows
    tr, te = splits["train"].to_pandas(), splits["test"].to_pandas()
    first_test = te.groupby("user_id").timestamp.min()
    assert (tr.timestamp <= tr.user_id.map(first_test).fillna(np.inf)).all()


def test_leave_last_out_without_timestamps_uses_log_order(caplog):
    df = _log().drop(columns="timestamp")
    with caplog.at_level(logging.INFO, logger="hf_recsys.data.splits"):
        splits = leave_last_out(df)
    last = df.groupby("user_id").row.max()
    count = df.groupby("user_id").row.size()
    assert sorted(_rows(splits["test"])) == sorted(last[count > 1].tolist())
    assert f"{int((count <= 1).sum())} user(s)" in caplog.text


def test_leave_last_out_no_leakage_and_sizes():
    df = _log()
    splits = leave_last_out(df, n_test=1, n_validation=1)
    parts = [set(_rows(splits[k])) for k in ("train", "validation", "test")]
    assert sum(len(p) for p in parts) == len(df) and len(set.union(*parts)) == len(df)
    assert splits["test"].num_rows == splits["validation"].num_rows
    assert len(set(splits["test"]["user_id"])) == splits["test"].num_rows  # one per user
    assert set(splits["test"]["user_id"]) <= set(splits["train"]["user_id"])


@pytest.mark.parametrize("test_ratio, val_ratio", [(0.2, 0.0), (0.3, 0.1), (0.5, 0.25)])
def test_temporal_user_split_matches_reference(test_ratio, val_ratio):
    df = _log()
    splits = temporal_user_split(df, test_ratio=test_ratio, validation_ratio=val_ratio)
    rank = _rank_from_end(df)
    count = df.groupby("user_id")["row"].transform("size")
    n_test = np.minimum(np.floor(count * test_ratio + 0.5), np.maximum(count - 1, 0))
    n_val = np.minimum(np.floor(count * val_ratio + 0.5), np.maximum(count - 1 - n_test, 0))
    assert _rows(splits["test"]) == df.row[rank < n_test].tolist()
    if val_ratio:
        assert _rows(splits["validation"]) == df.row[(rank >= n_test) & (rank < n_test + n_val)].tolist()
    assert splits["train"].to_pandas().groupby("user_id").size().min() >= 1
    assert set(df.user_id) == set(splits["train"]["user_id"])  # every user keeps a train interaction


def test_global_temporal_split():
    df = _log(ts_range=1000)
    splits = global_temporal_split(df, test_ratio=0.2, validation_ratio=0.1)
    tr, va, te = (splits[k].to_pandas() for k in ("train", "validation", "test"))
    assert tr.timestamp.max() < va.timestamp.min() and va.timestamp.max() < te.timestamp.min()
    assert len(tr) + len(va) + len(te) == len(df)
    cut = np.sort(df.timestamp.to_numpy())[len(df) - round(0.2 * len(df))]
    assert te.row.tolist() == df.row[df.timestamp >= cut].tolist()
    explicit = global_temporal_split(df, cutoff=500)
    assert explicit["test"].num_rows == int((df.timestamp >= 500).sum())
    iso = global_temporal_split(df.assign(timestamp=df.timestamp + 1_577_836_800), cutoff="2020-01-01T00:08:20Z")
    assert iso["test"].num_rows == explicit["test"].num_rows
    with pytest.raises(ValueError, match="timestamp"):
        global_temporal_split(df.drop(columns="timestamp"))


def test_random_split_sizes_seed_and_disjoint():
    df = _log()
    a = random_split(df, test_ratio=0.2, validation_ratio=0.1, seed=1)
    b = random_split(df, test_ratio=0.2, validation_ratio=0.1, seed=1)
    c = random_split(df, test_ratio=0.2, validation_ratio=0.1, seed=2)
    assert a["test"].num_rows == round(0.2 * len(df)) and a["validation"].num_rows == round(0.1 * len(df))
    assert _rows(a["test"]) == _rows(b["test"]) and _rows(a["test"]) != _rows(c["test"])
    parts = [set(_rows(a[k])) for k in a]
    assert sum(map(len, parts)) == len(df) and len(set.union(*parts)) == len(df)


def _kcore_reference(df, uk, ik):
    while True:
        uc = df.user_id.map(df.user_id.value_counts())
        ic = df.item_id.map(df.item_id.value_counts())
        keep = (uc >= uk) & (ic >= ik)
        if keep.all():
            return df
        df = df[keep]


@pytest.mark.parametrize("uk, ik", [(5, 5), (10, 3), (1, 1)])
def test_kcore_filter_matches_reference(uk, ik):
    df = _log(n=5000, users=400, items=300)
    got = kcore_filter(df, user_k=uk, item_k=ik)
    assert got["row"] == _kcore_reference(df, uk, ik).row.tolist()
    out = got.to_pandas()
    if len(out):
        assert out.user_id.value_counts().min() >= uk and out.item_id.value_counts().min() >= ik


def test_splits_accept_datasets_and_check_arguments():
    import datasets

    ds = datasets.Dataset.from_pandas(_log())
    assert leave_last_out(ds)["test"].num_rows > 0
    with pytest.raises(ValueError, match="n_test"):
        leave_last_out(ds, n_test=0)
    with pytest.raises(ValueError, match="test_ratio"):
        random_split(ds, test_ratio=1.5)
    with pytest.raises(ValueError, match="user_id"):
        leave_last_out(pd.DataFrame({"a": [1]}))
