"""Interaction logs and item catalogues as Hub datasets: pushed in one process, loaded by repo id in another."""

from __future__ import annotations

import pandas as pd
import pytest

pytestmark = pytest.mark.slow  # shares the two client interpreters of test_hub_push_pull.py


def _frame(records) -> pd.DataFrame:
    assert isinstance(records, list), f"loading failed: {records}"
    return pd.DataFrame.from_records(records)


def test_interaction_log_round_trip(hub_datasets):
    pushed, loaded = hub_datasets
    assert "error" not in pushed, pushed
    expected = _frame(pushed["log"])
    for key in ("log", "log_hub"):  # hf_recsys.data.load_interactions("org/x") and hub.load_interactions_from_hub
        got = _frame(loaded[key])
        assert list(got.columns) == ["user_id", "item_id", "rating", "timestamp"]
        pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_item_catalogue_round_trip(hub_datasets):
    pushed, loaded = hub_datasets
    pd.testing.assert_frame_equal(_frame(loaded["catalogue"]), _frame(pushed["catalogue"]), check_dtype=False)


def test_missing_dataset_is_a_clear_error(hub_datasets):
    _, loaded = hub_datasets
    assert "error" in loaded["missing"], "loading a dataset that does not exist must fail"
    assert "org/no-such-dataset" in loaded["missing"]["message"]
