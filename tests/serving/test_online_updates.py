"""``hf-recsys serve --online-updates``: POST /feedback events reach ``model.partial_fit`` in the background, under
the model lock; failures are reported, not raised; the index is rebuilt after an update."""

from __future__ import annotations

import threading
import types

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("hf_recsys_classic")

from fastapi.testclient import TestClient  # noqa: E402

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.modeling_utils import RecPreTrainedModel  # noqa: E402
from hf_recsys.serving import create_app  # noqa: E402
from hf_recsys.serving.online import OnlineUpdater, events_table  # noqa: E402
from hf_recsys.testing_utils import tiny_log  # noqa: E402

needs_partial_fit = pytest.mark.skipif(
    not hasattr(RecPreTrainedModel, "partial_fit"),
    reason="RecPreTrainedModel.partial_fit is missing (issue 13, online updates, not merged into this tree yet)",
)

EVENTS = [  # a new user who likes two known items, and a known user with a new item
    {"user_id": "new-user", "item_id": 7, "rating": 5.0, "timestamp": 1_700_000_000},
    {"user_id": "new-user", "item_id": 27, "rating": 4.0, "timestamp": 1_700_000_001},
    {"user_id": "u1", "item_id": 9_999, "rating": 3.0, "timestamp": 1_700_000_002},
]


def ease():
    return AutoModelForRecommendation.for_model("ease", l2=10.0).fit(tiny_log())


def test_a_model_without_partial_fit_is_refused_by_name():
    with pytest.raises(ValueError, match="partial_fit"):
        OnlineUpdater(types.SimpleNamespace(config=None), threading.Lock())


def test_online_updates_need_a_feedback_log():
    model = types.SimpleNamespace(partial_fit=lambda *a, **k: None, eval=lambda: None, config=None)
    with pytest.raises(ValueError, match="feedback_log"):
        create_app(model, online_updates=True)


def test_the_update_log_has_the_fitted_columns():
    model = types.SimpleNamespace(
        config=types.SimpleNamespace(fitted_log={"columns": {"user_id": "string", "item_id": "integer"}})
    )
    assert events_table(model, EVENTS).column_names == ["user_id", "item_id"]  # no rating/timestamp fitted
    model.config.fitted_log["columns"].update(rating="float", timestamp="integer")
    table = events_table(model, EVENTS)
    assert table.column_names == ["user_id", "item_id", "rating", "timestamp"]
    assert table["rating"].to_pylist() == [5.0, 4.0, 3.0]
    with pytest.raises(ValueError, match="no rating"):
        events_table(model, [{"user_id": "u1", "item_id": 7, "timestamp": 1}])


@needs_partial_fit
def test_feedback_updates_the_served_model_like_partial_fit(tmp_path):
    served, oracle = ease(), ease()
    app = create_app(served, feedback_log=tmp_path / "feedback.jsonl", online_updates=True)
    with TestClient(app) as client:
        assert client.post("/recommend", json={"users": ["new-user"]}).status_code == 404  # unknown before
        r = client.post("/feedback", json={"events": EVENTS})
        assert r.status_code == 200 and r.json()["logged"] == 3, r.text
        assert app.state.updater.wait(60)
        status = client.get("/metadata").json()["online_updates"]
        assert status["updates"] == 1 and status["events_applied"] == 3 and status["last_error"] is None, status
        got = client.post("/recommend", json={"users": ["new-user", "u1"], "k": 5}).json()["recommendations"]
    oracle.partial_fit(events_table(oracle, EVENTS))
    ids, scores = oracle.recommend(["new-user", "u1"], k=5)
    assert [g["items"] for g in got] == ids.tolist()
    np.testing.assert_allclose([g["scores"] for g in got], scores, rtol=1e-5)
    assert not {7, 27} & set(got[0]["items"])  # the fed items count as seen
    assert (tmp_path / "feedback.jsonl").read_text().count("\n") == 3  # logged as well


@needs_partial_fit
def test_a_failed_update_is_reported_and_the_server_keeps_answering(tmp_path):
    app = create_app(ease(), feedback_log=tmp_path / "feedback.jsonl", online_updates=True)
    with TestClient(app) as client:
        bad = [{"user_id": "u1", "item_id": "not-an-int-id", "rating": 4.0}]  # item ids of the log are ints
        assert client.post("/feedback", json={"events": bad}).status_code == 200
        assert app.state.updater.wait(60)
        status = client.get("/metadata").json()["online_updates"]
        assert status["events_failed"] == 1 and status["last_error"], status
        assert client.post("/recommend", json={"users": ["u1"], "k": 3}).status_code == 200


@needs_partial_fit
def test_an_index_is_rebuilt_after_an_update(tmp_path):
    pytest.importorskip("faiss")
    model = AutoModelForRecommendation.for_model("als", factors=8, iterations=3).fit(tiny_log())
    model.build_index("exact")
    app = create_app(model, feedback_log=tmp_path / "feedback.jsonl", online_updates=True)
    with TestClient(app) as client:
        client.post("/feedback", json={"events": EVENTS})
        assert app.state.updater.wait(60)
        assert client.get("/metadata").json()["online_updates"]["last_error"] is None
        r = client.post("/recommend", json={"users": ["new-user"], "k": 3})
        assert r.status_code == 200, r.text  # a stale index would refuse to answer
    ids, _ = model.recommend(["new-user"], k=3)
    model.drop_index()
    assert ids.tolist() == model.recommend(["new-user"], k=3)[0].tolist()
