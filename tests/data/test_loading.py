"""load_interactions: every source format, column mapping, and one test per bad-input case."""

from __future__ import annotations

import gzip
import json
import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hf_recsys.data import DataValidationError, load_interactions

ROWS = [  # user, item, rating, timestamp
    (1, 10, 4.0, 100),
    (1, 11, 3.5, 200),
    (2, 10, 5.0, 150),
    (3, 12, 1.0, 50),
]


def _df() -> pd.DataFrame:
    return pd.DataFrame(ROWS, columns=["userId", "movieId", "rating", "timestamp"])


def _check(ds) -> None:
    assert ds.column_names == ["user_id", "item_id", "rating", "timestamp"]
    assert str(ds.features["user_id"].dtype) == "int64" and str(ds.features["item_id"].dtype) == "int64"
    assert str(ds.features["rating"].dtype) == "float32" and str(ds.features["timestamp"].dtype) == "int64"
    assert ds["user_id"] == [r[0] for r in ROWS] and ds["item_id"] == [r[1] for r in ROWS]
    assert ds["rating"] == [r[2] for r in ROWS] and ds["timestamp"] == [r[3] for r in ROWS]


# ------------------------------------------------------------------------------------------ formats
def test_csv_with_aliases(tmp_path):
    path = tmp_path / "ratings.csv"
    _df().to_csv(path, index=False)
    _check(load_interactions(path))


def test_tsv_gzip_and_explicit_mapping(tmp_path):
    path = tmp_path / "log.tsv.gz"
    df = _df().rename(columns={"userId": "who", "movieId": "what", "rating": "stars", "timestamp": "when"})
    with gzip.open(path, "wt") as f:
        df.to_csv(f, sep="\t", index=False)
    cols = {"user_id": "who", "item_id": "what", "rating": "stars", "timestamp": "when"}
    _check(load_interactions(path, columns=cols))


def test_csv_without_header_and_multichar_separator(tmp_path):
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join("::".join(str(int(v)) if i != 2 else str(v) for i, v in enumerate(r)) for r in ROWS))
    ds = load_interactions(
        path, sep="::", header=False, column_names=["user_id", "item_id", "rating", "timestamp"], format="csv"
    )
    _check(ds)


def test_parquet_reads_only_needed_columns(tmp_path):
    path = tmp_path / "log.parquet"
    df = _df().assign(extra=["a", "b", "c", "d"])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    _check(load_interactions(path))


def test_json_lines_and_json_array(tmp_path):
    lines = tmp_path / "log.jsonl"
    records = _df().to_dict(orient="records")
    lines.write_text("\n".join(json.dumps(r) for r in records))
    _check(load_interactions(lines))
    array = tmp_path / "log.json"
    array.write_text(json.dumps(records))
    _check(load_interactions(array))


def test_in_memory_sources():
    import datasets

    _check(load_interactions(_df()))
    _check(load_interactions(pa.Table.from_pandas(_df(), preserve_index=False)))
    _check(load_interactions(datasets.Dataset.from_pandas(_df())))
    dd = datasets.DatasetDict({"train": datasets.Dataset.from_pandas(_df())})
    _check(load_interactions(dd, split="train"))
    with pytest.raises(ValueError, match="splits"):
        load_interactions(dd, split="test")


def test_saved_dataset_folder(tmp_path):
    import datasets

    datasets.Dataset.from_pandas(_df()).save_to_disk(str(tmp_path / "saved"))
    _check(load_interactions(tmp_path / "saved"))
    datasets.DatasetDict({"train": datasets.Dataset.from_pandas(_df())}).save_to_disk(str(tmp_path / "dd"))
    _check(load_interactions(tmp_path / "dd", split="train"))


def test_local_data_folder_goes_through_load_dataset(tmp_path):
    folder = tmp_path / "hub_like"
    folder.mkdir()
    _df().to_csv(folder / "train.csv", index=False)
    _check(load_interactions(folder))


def test_hub_id_uses_load_dataset(monkeypatch):
    import datasets

    calls = {}

    def fake_load_dataset(name, split=None, **kw):
        calls["args"] = (name, split)
        return datasets.Dataset.from_pandas(_df())

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    _check(load_interactions("someone/movielens-like"))
    assert calls["args"] == ("someone/movielens-like", "train")


def test_hub_id_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="Hugging Face Hub dataset") as exc:
        load_interactions("no-such-owner/no-such-dataset-xyz")
    assert "no-such-owner/no-such-dataset-xyz" in str(exc.value)


def test_missing_local_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file"):
        load_interactions(tmp_path / "nope.csv")


def test_string_ids_and_id_dtype(tmp_path):
    df = pd.DataFrame({"user_id": ["u1", "u2"], "item_id": ["007", "008"]})
    path = tmp_path / "s.csv"
    df.to_csv(path, index=False)
    ds = load_interactions(df)
    assert ds["user_id"] == ["u1", "u2"] and ds["item_id"] == ["007", "008"]
    assert ds.column_names == ["user_id", "item_id"]  # no rating / timestamp in the source: none in the output
    ds = load_interactions(_df(), id_dtype="string")
    assert ds["user_id"][0] == "1"


def test_timestamp_parsing_iso_datetime_and_units():
    iso = ["2020-01-01T00:00:00Z", "2020-01-01 00:00:01", "2020-01-01T02:00:02+02:00", "2020-01-02"]
    df = pd.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [1, 1, 1, 1], "timestamp": iso})
    expected = [1577836800, 1577836801, 1577836802, 1577923200]
    assert load_interactions(df)["timestamp"] == expected
    df["timestamp"] = pd.to_datetime(iso[:2] + ["2020-01-01T00:00:02Z", "2020-01-02"], utc=True, format="ISO8601")
    assert load_interactions(df)["timestamp"] == expected
    df["timestamp"] = np.array(expected) * 1000
    assert load_interactions(df, timestamp_unit="ms")["timestamp"] == expected
    df["timestamp"] = np.array(expected, dtype=float)
    assert load_interactions(df)["timestamp"] == expected


def test_timestamp_format_option():
    df = pd.DataFrame({"user_id": [1], "item_id": [2], "timestamp": ["31/01/2020"]})
    assert load_interactions(df, timestamp_format="%d/%m/%Y")["timestamp"] == [1580428800]


# ------------------------------------------------------------------------------------------ bad input
def test_missing_required_column():
    with pytest.raises(DataValidationError, match=r"Missing required column\(s\) \['item_id'\]"):
        load_interactions(pd.DataFrame({"user_id": [1], "whatever": [2]}))


def test_unknown_canonical_name_in_mapping():
    with pytest.raises(DataValidationError, match="Unknown canonical column.*'usr'"):
        load_interactions(_df(), columns={"usr": "userId"})


def test_mapping_names_a_column_the_source_lacks():
    with pytest.raises(DataValidationError, match="'uid' \\(for 'user_id'\\).*not in the source"):
        load_interactions(_df(), columns={"user_id": "uid"})


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(DataValidationError, match="empty"):
        load_interactions(path)


def test_header_only_file(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("user_id,item_id,rating\n")
    with pytest.raises(DataValidationError, match="no rows"):
        load_interactions(path)


def test_null_user_id_names_column_and_rows(tmp_path):
    path = tmp_path / "nulls.csv"
    path.write_text("user_id,item_id\n1,2\n,3\n4,5\n,6\n")
    with pytest.raises(
        DataValidationError, match=r"column 'user_id' has 2 null/NaN id\(s\), first at row\(s\) \[1, 3\]"
    ):
        load_interactions(path)


def test_nan_item_id_in_a_dataframe():
    df = pd.DataFrame({"userId": [1, 2], "movieId": [3.0, np.nan]})
    with pytest.raises(DataValidationError, match=r"column 'item_id' \(source column 'movieId'\).*null/NaN.*\[1\]"):
        load_interactions(df)


def test_empty_string_id():
    df = pd.DataFrame({"user_id": ["a", "  "], "item_id": ["x", "y"]})
    with pytest.raises(DataValidationError, match=r"column 'user_id' has 1 empty id\(s\).*\[1\]"):
        load_interactions(df)


def test_non_numeric_rating(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("user_id,item_id,rating\n1,2,4.5\n1,3,great\n2,3,5\n")
    with pytest.raises(DataValidationError, match=r"column 'rating' has 1 non-numeric rating\(s\).*\[1\].*'great'"):
        load_interactions(path)


def test_nan_rating():
    df = pd.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 2, 3], "rating": [4.0, np.nan, 3.0]})
    with pytest.raises(DataValidationError, match=r"column 'rating' has 1 null/NaN rating\(s\).*\[1\]"):
        load_interactions(df)


def test_unparsable_timestamp():
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "ts": ["2020-01-01", "yesterday"]})
    with pytest.raises(
        DataValidationError, match=r"column 'timestamp' \(source column 'ts'\).*unparsable.*'yesterday'"
    ):
        load_interactions(df)


def test_missing_timestamp():
    df = pd.DataFrame({"user_id": [1, 2], "item_id": [1, 2], "timestamp": [5.0, np.nan]})
    with pytest.raises(DataValidationError, match=r"column 'timestamp' has 1 missing/NaN timestamp"):
        load_interactions(df)


def test_mixed_type_column_in_dataframe():
    df = pd.DataFrame({"user_id": [1, "a"], "item_id": [1, 2]})
    with pytest.raises(DataValidationError, match="mixes types"):
        load_interactions(df)


DUPS = pd.DataFrame(
    {"user_id": [1, 1, 2, 1, 1], "item_id": [5, 5, 5, 5, 6], "rating": [1.0, 3.0, 4.0, 5.0, 2.0], "timestamp": [9] * 5}
)


def test_duplicates_error_names_rows_and_policies():
    with pytest.raises(DataValidationError) as exc:
        load_interactions(DUPS)
    msg = str(exc.value)
    assert "2 duplicate (user_id, item_id, timestamp) row(s) in 1 group(s)" in msg
    assert "rows [0, 1, 3]" in msg and "duplicates='first'" in msg and "'mean'" in msg and "'keep'" in msg


@pytest.mark.parametrize(
    "policy, ratings",
    [("first", [1.0, 4.0, 2.0]), ("last", [4.0, 5.0, 2.0]), ("mean", [3.0, 4.0, 2.0]), ("keep", [1, 3, 4, 5, 2])],
)
def test_duplicate_policies(policy, ratings, caplog):
    with caplog.at_level(logging.WARNING, logger="hf_recsys.data.loading"):
        ds = load_interactions(DUPS, duplicates=policy)
    assert ds["rating"] == [float(r) for r in ratings]
    assert "2 duplicate" in caplog.text and policy in caplog.text


def test_duplicates_without_timestamp_use_user_item():
    df = DUPS.drop(columns="timestamp")
    with pytest.raises(DataValidationError, match=r"duplicate \(user_id, item_id\) row"):
        load_interactions(df)
    same_pair_other_time = DUPS.assign(timestamp=[1, 2, 3, 4, 5])
    assert load_interactions(same_pair_other_time).num_rows == 5  # a re-watch at another time is not a duplicate


def test_duplicate_detection_matches_pandas_on_random_data():
    rng = np.random.default_rng(0)
    n = 30_000
    df = pd.DataFrame(
        {"user_id": rng.integers(0, 300, n), "item_id": rng.integers(0, 200, n), "timestamp": rng.integers(0, 3, n)}
    )
    expected = df.drop_duplicates(keep="first").reset_index(drop=True)
    got = load_interactions(df, duplicates="first").to_pandas()
    pd.testing.assert_frame_equal(got, expected)
    expected_last = df.drop_duplicates(keep="last").reset_index(drop=True)
    pd.testing.assert_frame_equal(load_interactions(df, duplicates="last").to_pandas(), expected_last)


def test_bad_policy_name():
    with pytest.raises(ValueError, match="duplicates must be one of"):
        load_interactions(_df(), duplicates="drop")
