"""The HTTP server on 127.0.0.1: every endpoint, bad bodies, tokens, micro-batching, disconnecting clients."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")
pytest.importorskip("hf_recsys_classic")

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.data import load_interactions  # noqa: E402
from hf_recsys.serving import create_app  # noqa: E402
from hf_recsys.testing_utils import tiny_log  # noqa: E402

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """An EASE model served on a random free port of 127.0.0.1, in a thread of this process."""
    log = tiny_log()
    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(log)
    feedback = tmp_path_factory.mktemp("serve") / "feedback.jsonl"
    app = create_app(model, token=TOKEN, feedback_log=feedback, max_wait_ms=20)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started and time.time() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "model": model, "feedback": feedback, "app": app}
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server["url"], headers=AUTH, timeout=30) as c:
        yield c


def test_health_needs_no_token(server):
    r = httpx.get(server["url"] + "/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_every_other_endpoint_refuses_a_missing_or_wrong_token(server, headers):
    for method, path, body in [
        ("GET", "/metadata", None),
        ("POST", "/recommend", {"users": ["u1"]}),
        ("POST", "/similar", {"items": [7]}),
        ("POST", "/score", {"users": ["u1"], "items": [7]}),
        ("POST", "/feedback", {"events": [{"user_id": "u1", "item_id": 7}]}),
    ]:
        r = httpx.request(method, server["url"] + path, json=body, headers=headers)
        assert r.status_code == 401, (path, r.text)
        assert "token" in r.json()["detail"]


def test_metadata(client, server):
    meta = client.get("/metadata").json()
    assert meta["model_type"] == "ease" and meta["num_items"] == server["model"].config.num_items
    assert meta["supports_history"] is True


def test_recommend_known_users_equals_the_model(client, server):
    model = server["model"]
    r = client.post("/recommend", json={"users": ["u1", "u2"], "k": 5})
    assert r.status_code == 200
    ids, scores = model.recommend(["u1", "u2"], k=5)
    got = r.json()["recommendations"]
    assert [g["user"] for g in got] == ["u1", "u2"]
    assert [g["items"] for g in got] == ids.tolist()
    np.testing.assert_allclose([g["scores"] for g in got], scores, rtol=1e-6)


def test_recommend_from_a_history_and_with_options(client, server):
    model = server["model"]
    r = client.post("/recommend", json={"history": [7, 27], "k": 4})
    ids, _ = model.recommend(["new"], k=4, histories={"new": [7, 27]})
    assert r.json()["recommendations"][0]["items"] == ids[0].tolist()
    r = client.post("/recommend", json={"users": ["u3"], "k": 3, "exclude_seen": False, "items": [7, 17, 27, 37]})
    ids, _ = model.recommend(["u3"], k=3, exclude_seen=False, items=[7, 17, 27, 37])
    assert r.json()["recommendations"][0]["items"] == ids[0].tolist()


def test_similar_and_score(client, server):
    model = server["model"]
    r = client.post("/similar", json={"items": [7, 17], "k": 3})
    ids, scores = model.similar_items([7, 17], k=3)
    assert [s["items"] for s in r.json()["similar"]] == ids.tolist()
    r = client.post("/score", json={"users": ["u1", "u4"], "items": [7, 17, 27]})
    np.testing.assert_allclose(r.json()["scores"], model.score(["u1", "u4"], [7, 17, 27]), rtol=1e-6)
    r = client.post("/score", json={"history": [7], "items": [17, 27]})
    want = model.score(["new"], [17, 27], histories={"new": [7]})
    np.testing.assert_allclose(r.json()["scores"], want, rtol=1e-6)


def test_feedback_is_appended_to_a_log_that_load_interactions_reads(client, server):
    events = [
        {"user_id": "u1", "item_id": 7, "rating": 4.0, "timestamp": 1_700_000_000},
        {"user_id": "new-user", "item_id": 17, "rating": 5.0, "timestamp": 1_700_000_060},
    ]
    r = client.post("/feedback", json={"events": events})
    assert r.status_code == 200 and r.json()["logged"] == 2
    r = client.post("/feedback", json={"events": [{"user_id": "u2", "item_id": 27, "rating": 3.0}]})
    assert r.status_code == 200
    lines = [json.loads(x) for x in server["feedback"].read_text().splitlines()]
    assert lines[:2] == events and abs(lines[2]["timestamp"] - time.time()) < 60
    ds = load_interactions(str(server["feedback"]))
    assert len(ds) == 3 and set(ds.column_names) >= {"user_id", "item_id", "rating", "timestamp"}


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/recommend", {"users": ["u1"], "k": 0}, "k"),
        ("/recommend", {"users": ["u1"], "k": "ten"}, "k"),
        ("/recommend", {"users": "u1"}, "users"),
        ("/recommend", {"users": ["u1"], "colour": "red"}, "colour"),
        ("/recommend", {"users": ["u1"], "history": [7]}, "exactly one of 'users'"),
        ("/recommend", {}, "exactly one of 'users'"),
        ("/similar", {"k": 3}, "items"),
        ("/score", {"users": ["u1"]}, "items"),
        ("/feedback", {"events": [{"user_id": "u1"}]}, "events.0.item_id"),
        ("/feedback", {"events": []}, "events"),
    ],
)
def test_bad_bodies_get_a_4xx_naming_the_field(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["error"]


def test_not_json_and_unknown_ids(client):
    r = client.post("/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    r = client.post("/recommend", json={"users": ["nobody"]})
    assert r.status_code == 404 and "nobody" in r.json()["error"]
    r = client.post("/similar", json={"items": [123456]})
    assert r.status_code == 404 and "123456" in r.json()["error"]


def test_concurrent_requests_are_micro_batched_and_a_bad_one_fails_alone(server):
    async def many():
        async with httpx.AsyncClient(base_url=server["url"], headers=AUTH, timeout=30) as c:
            users = [f"u{i}" for i in range(24)] + ["nobody"]
            return users, await asyncio.gather(*(c.post("/recommend", json={"users": [u], "k": 5}) for u in users))

    batcher = server["app"].state.batchers["recommend"]
    before = batcher.calls
    users, answers = asyncio.run(many())
    assert [r.status_code for r in answers] == [200] * 24 + [404]
    ids, _ = server["model"].recommend(users[:-1], k=5)
    assert [r.json()["recommendations"][0]["items"] for r in answers[:-1]] == ids.tolist()
    assert batcher.calls - before < 24  # fewer model calls than requests


def test_server_survives_clients_that_disconnect_mid_request(client, server):
    body = json.dumps({"users": ["u1"], "k": 5}).encode()
    head = (
        f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    for payload in (head[:20], head + body[:5], head + body):  # in the headers, in the body, before the answer
        with socket.create_connection(("127.0.0.1", server["port"])) as s:
            s.sendall(payload)
        time.sleep(0.05)
    assert client.get("/health").status_code == 200
    r = client.post("/recommend", json={"users": ["u1"], "k": 5})
    assert r.status_code == 200 and len(r.json()["recommendations"][0]["items"]) == 5


def test_serve_subcommand_is_registered():
    from hf_recsys.cli import build_parser

    args = build_parser().parse_args(["serve", "some/model", "--port", "9", "--token", "x"])
    assert args.model == "some/model" and args.port == 9 and args.token == "x"


def test_the_fast_path_answers_like_the_fastapi_route_and_leaves_errors_to_it():
    from fastapi.testclient import TestClient

    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(tiny_log())
    fast, slow = create_app(model, token=TOKEN), create_app(model, token=TOKEN, fast_path=False)
    bodies = [
        ("/recommend", {"users": ["u1", "u2"], "k": 4}),
        ("/recommend", {"history": [7, 17], "k": 3, "items": [27, 37, 47, 57]}),
        ("/similar", {"items": [7, 27], "k": 2}),
    ]
    with TestClient(fast, headers=AUTH) as f, TestClient(slow, headers=AUTH) as s:
        for path, body in bodies:
            a, b = f.post(path, json=body), s.post(path, json=body)
            assert a.status_code == b.status_code == 200 and a.content == b.content, (path, a.text, b.text)
        assert fast.state.fast_path_answers == len(bodies)
        for path, body, headers in [
            ("/recommend", {"users": ["u1"], "k": 0}, AUTH),  # 422 naming k
            ("/recommend", {"users": ["nobody"]}, AUTH),  # 404 naming the id
            ("/similar", {"items": [7]}, {"Authorization": "Bearer wrong"}),  # 401
        ]:
            a, b = f.post(path, json=body, headers=headers), s.post(path, json=body, headers=headers)
            assert a.status_code == b.status_code and a.status_code in (401, 404, 422) and a.json() == b.json()
        a = f.post("/recommend", content=b'{"users": ["u1"]}', headers={**AUTH, "Content-Type": "text/plain"})
        b = s.post("/recommend", content=b'{"users": ["u1"]}', headers={**AUTH, "Content-Type": "text/plain"})
        assert a.status_code == b.status_code and a.content == b.content  # not JSON: the app decides, as before
        assert fast.state.fast_path_answers == len(bodies)


def test_places_no_eligible_item_fills_have_a_null_score():
    from fastapi.testclient import TestClient

    model = AutoModelForRecommendation.for_model("ease", l2=10.0).fit(tiny_log())
    seen = model.item_vocab.decode(model.seen_items[model.user_vocab.encode(["u1"])[0]].indices).tolist()
    unseen = next(i for i in model.item_vocab.decode(np.arange(model.config.num_items)).tolist() if i not in seen)
    body = {"users": ["u1"], "k": 3, "items": [*seen[:2], unseen]}  # only one candidate is not seen
    with TestClient(create_app(model)) as c:
        rec = c.post("/recommend", json=body).json()["recommendations"][0]
    assert rec["items"][0] == unseen and rec["scores"][0] is not None and rec["scores"][1:] == [None, None]
