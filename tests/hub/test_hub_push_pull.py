"""push_to_hub -> fresh process -> from_pretrained by repo id, against a Hub-compatible server on 127.0.0.1.

Every family row of ``hub_cases.HUB_CASES`` runs every test here. The push process records the recommendations
of the models it pushed; the load process (another interpreter, another cache) records what the models it loaded
by repo id recommend; the tests compare the two records.
"""

from __future__ import annotations

import numpy as np
import pytest
from hub_cases import HUB_CASES

pytestmark = pytest.mark.slow  # two interpreters importing torch + transformers: ~20-40 s for the whole module

CASES = [pytest.param(c["name"], id=c["name"]) for c in HUB_CASES]


def _case(hub_roundtrip, name):
    pushed, loaded = hub_roundtrip
    if name not in pushed:
        pytest.skip(f"model family of {name!r} is not installed")
    if "setup_error" in pushed[name]:
        err = pushed[name]["setup_error"]
        pytest.fail(f"fitting or pushing {name!r} failed: {err['error']}: {err['message']}")
    return pushed[name], loaded[name]


def _assert_same(got: dict, expected: dict) -> None:
    assert "error" not in got, f"loading failed: {got}"
    assert got["ids"] == expected["ids"]
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-6)
    if "cold" in expected:
        assert got["cold"]["ids"] == expected["cold"]["ids"]
        np.testing.assert_allclose(got["cold"]["scores"], expected["cold"]["scores"], rtol=1e-6)


def _assert_error(got: dict, kind: str, *needles: str) -> None:
    assert "error" in got, f"expected {kind}, but the model loaded: {got.get('class')}"
    assert kind in got["bases"], f"expected {kind}, got {got['error']}: {got['message']}"
    for needle in needles:
        assert needle in got["message"], f"{needle!r} not in the error message: {got['message']}"


@pytest.mark.parametrize("name", CASES)
def test_from_pretrained_by_repo_id_gives_identical_recommendations(hub_roundtrip, name):
    pushed, loaded = _case(hub_roundtrip, name)
    assert pushed["expected_a"]["ids"] != pushed["expected_b"]["ids"], "the two versions must differ to be told apart"
    _assert_same(loaded["main"], pushed["expected_a"])  # AutoModelForRecommendation.from_pretrained("org/name")
    _assert_same(loaded["main_checked"], pushed["expected_a"])  # hf_recsys.hub.load_model("org/name")


@pytest.mark.parametrize("name", CASES)
def test_pipeline_by_repo_id(hub_roundtrip, name):
    pushed, loaded = _case(hub_roundtrip, name)
    got = loaded["pipeline"]
    assert "error" not in got, got
    expected = pushed["expected_a"]
    assert got["ids"] == expected["ids"]
    np.testing.assert_allclose(got["scores"], expected["scores"], rtol=1e-6)


@pytest.mark.parametrize("name", CASES)
def test_revisions(hub_roundtrip, name):
    pushed, loaded = _case(hub_roundtrip, name)
    _assert_same(loaded["dev"], pushed["expected_b"])  # branch pushed with revision="dev"
    _assert_same(loaded["commit_a"], pushed["expected_a"])  # a commit sha
    _assert_error(loaded["missing_revision"], "OSError", "no-branch")


@pytest.mark.parametrize("name", CASES)
def test_missing_repo_is_a_clear_error(hub_roundtrip, name):
    _, loaded = _case(hub_roundtrip, name)
    _assert_error(loaded["missing_repo"], "OSError", "org/no-such-model")
    _assert_error(loaded["missing_repo_checked"], "RepositoryNotFoundError", "org/no-such-model")


@pytest.mark.parametrize("name", CASES)
def test_push_failing_half_way_publishes_nothing(hub_roundtrip, name):
    """The server fails the commit after receiving it: the push raises and main still serves the previous model."""
    pushed, loaded = _case(hub_roundtrip, name)
    assert pushed["failed_push"] is not None, "the injected failure must reach the caller"
    assert "HfHubHTTPError" in pushed["failed_push"]["bases"]
    _assert_same(loaded["main"], pushed["expected_a"])


@pytest.mark.parametrize("name", CASES)
def test_partial_or_mixed_upload_is_refused(hub_roundtrip, name):
    """Files uploaded one by one that stopped after two, or files of two saves: the checked loader refuses both."""
    _, loaded = _case(hub_roundtrip, name)
    _assert_error(loaded["partial_checked"], "IncompleteCheckpointError", "missing", "id_vocab.json")
    _assert_error(loaded["mixed_checked"], "IncompleteCheckpointError", "changed: seen_items.safetensors")


@pytest.mark.parametrize("name", CASES)
def test_auto_from_pretrained_refuses_partial_upload(hub_roundtrip, name):
    _, loaded = _case(hub_roundtrip, name)
    _assert_error(loaded["partial_auto"], "IncompleteCheckpointError", "missing")


@pytest.mark.parametrize("name", CASES)
def test_private_repo_needs_a_token(hub_roundtrip, name):
    pushed, loaded = _case(hub_roundtrip, name)
    _assert_error(loaded["private_no_token"], "RepositoryNotFoundError")
    _assert_same(loaded["private_token"], pushed["expected_a"])


@pytest.mark.parametrize("name", CASES)
def test_pushed_card_has_hub_metadata(hub_roundtrip, name):
    from huggingface_hub import ModelCard

    pushed, _ = _case(hub_roundtrip, name)
    card = ModelCard(pushed["card"])
    assert card.data.library_name == "hf-recsys"
    assert {"recommender-system", "hf-recsys"} <= set(card.data.tags)
    assert f'from_pretrained("org/{name}")' in card.text
    case = next(c for c in HUB_CASES if c["name"] == name)
    base_model = case.get("card_kwargs", {}).get("base_model")
    assert card.data.base_model == base_model  # backbone families name their base model; the others none
