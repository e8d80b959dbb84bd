"""Fixtures shared by the core tests and every plugin's tests."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def ml_latest_small():
    """Folder of MovieLens ml-latest-small; the test skips when it is absent."""
    from hf_recsys.testing_utils import ML_LATEST_SMALL_ENV, ml_latest_small_path

    path = ml_latest_small_path()
    if path is None:
        pytest.skip(f"MovieLens ml-latest-small not found: set {ML_LATEST_SMALL_ENV} or put it in ../shared/data/")
    return path


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate keeps process-wide state; a test using this fixture leaves a clean one behind."""
    from accelerate.state import AcceleratorState, GradientState

    yield
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
