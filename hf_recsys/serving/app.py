"""The HTTP JSON server of a recommender (FastAPI): ``create_app(model)`` and ``serve(model_or_path)``.

Endpoints: ``POST /recommend``, ``/similar``, ``/score``, ``/feedback``; ``GET /health``, ``/metadata``.
``/recommend`` and ``/similar`` are micro-batched (:class:`~hf_recsys.serving.batching.MicroBatcher`). With a
token, every endpoint but ``/health`` needs ``Authorization: Bearer <token>``. FastAPI and uvicorn are optional:
``pip install "hf-recsys[serve]"``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import threading
import time
from contextlib import asynccontextmanager
from typing import Any, Union

import numpy as np

try:
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.encoders import jsonable_encoder
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import BaseModel, ConfigDict, Field, model_validator
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('The server needs FastAPI and uvicorn: pip install "hf-recsys[serve]".') from exc

from ..data.vocab import UnknownIdError
from .batching import MicroBatcher

Id = Union[int, str]  # noqa: UP007 - pydantic reads it at runtime on Python 3.10 too


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RecommendRequest(_Body):
    users: list[Id] | None = Field(None, min_length=1, description="known user ids")
    history: list[Id] | None = Field(None, description="item history of one new user (instead of users)")
    k: int = Field(10, ge=1, le=10_000)
    exclude_seen: bool = True
    items: list[Id] | None = Field(None, min_length=1, description="rank only these candidate items")

    @model_validator(mode="after")
    def _one_of(self):
        if (self.users is None) == (self.history is None):
            raise ValueError("give exactly one of 'users' (known users) or 'history' (a new user's items)")
        return self


class SimilarRequest(_Body):
    items: list[Id] = Field(..., min_length=1)
    k: int = Field(10, ge=1, le=10_000)


class ScoreRequest(_Body):
    users: list[Id] | None = Field(None, min_length=1)
    history: list[Id] | None = None
    items: list[Id] = Field(..., min_length=1)

    _one_of = RecommendRequest._one_of


class FeedbackEvent(_Body):
    user_id: Id
    item_id: Id
    rating: float | None = None
    timestamp: int | None = Field(None, description="seconds since the epoch; default: when the server got it")


class FeedbackRequest(_Body):
    events: list[FeedbackEvent] = Field(..., min_length=1)


def _py(values: np.ndarray) -> list:
    return np.asarray(values).tolist()


class FeedbackLog:
    """Appends feedback events to a JSON Lines file (``user_id, item_id, rating, timestamp``), which
    ``hf_recsys.data.load_interactions`` and ``datasets.load_dataset("json", ...)`` read. One line per event, written
    and flushed under a lock, so concurrent requests never interleave."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        self._lock = threading.Lock()

    def append(self, events: list[FeedbackEvent]) -> list[dict]:
        """Append ``events`` (timestamps defaulting to now) and return them as the dicts written."""
        now = int(time.time())
        rows = []
        for e in events:
            row = {"user_id": e.user_id, "item_id": e.item_id}
            if e.rating is not None:
                row["rating"] = e.rating
            row["timestamp"] = e.timestamp if e.timestamp is not None else now
            rows.append(row)
        lines = "".join(json.dumps(row) + "\n" for row in rows)
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())
        return rows


def _recommend_batch(model, key: tuple, payloads: list) -> list:
    """One ``model.recommend`` call for many requests sharing ``(k, exclude_seen, items)``."""
    k, exclude_seen, items = key
    users, hists, sizes = [], [], []
    for req in payloads:
        if req.history is not None:
            users.append(f"__history_{len(users)}")
            hists.append(req.history)
            sizes.append(1)
        else:
            users.extend(req.users)
            hists.extend([None] * len(req.users))
            sizes.append(len(req.users))
    cold = any(h is not None for h in hists)
    ids, scores = model.recommend(
        users, k=k, exclude_seen=exclude_seen, items=list(items) if items else None, histories=hists if cold else None
    )
    out, start = [], 0
    all_finite = bool(np.isfinite(scores).all())  # the usual case: no filler places, no per-score check

    def as_scores(row: np.ndarray) -> list:
        return row.tolist() if all_finite else [_finite(s) for s in row]

    for req, n in zip(payloads, sizes):
        rows = range(start, start + n)
        names = [None] * n if req.history is not None else req.users
        out.append([{"user": u, "items": _py(ids[r]), "scores": as_scores(scores[r])} for u, r in zip(names, rows)])
        start += n
    return out


def _finite(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None  # JSON has no -inf: filler places (fewer eligible items) are null


def _similar_batch(model, key: tuple, payloads: list) -> list:
    (k,) = key
    flat = [i for req in payloads for i in req.items]
    ids, scores = model.similar_items(flat, k=k)
    out, start = [], 0
    for req in payloads:
        n = len(req.items)
        out.append(
            [
                {"item": i, "items": _py(ids[r]), "scores": [float(s) for s in scores[r]]}
                for i, r in zip(req.items, range(start, start + n))
            ]
        )
        start += n
    return out


def _metadata(model) -> dict[str, Any]:
    from .. import __version__

    cfg = model.config
    return {
        "model_type": cfg.model_type,
        "model_class": type(model).__name__,
        "num_users": int(cfg.num_users),
        "num_items": int(cfg.num_items),
        "supports_history": bool(getattr(model, "supports_history", False)),
        "retrieval_index": getattr(cfg, "retrieval_index", None),
        "evaluation": getattr(cfg, "evaluation", None),
        "dataset": getattr(cfg, "dataset", None),
        "hf_recsys_version": __version__,
    }


def _field_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {err.get('msg')}")
    return "; ".join(parts)


def create_app(
    model,
    token: str | None = None,
    feedback_log: str | os.PathLike | None = None,
    max_batch: int = 256,
    max_wait_ms: float = 2.0,
    online_updates: bool = False,
    update_options: dict[str, Any] | None = None,
    fast_path: bool = True,
) -> FastAPI:
    """The FastAPI app serving ``model``.

    Args:
        model: a fitted hf-recsys model (with its vocabularies).
        token: bearer token required on every endpoint but ``/health`` (``None``: open).
        feedback_log: JSON Lines file ``/feedback`` appends to (``None``: ``/feedback`` answers 404).
        max_batch, max_wait_ms: micro-batching of ``/recommend`` and ``/similar``.
        online_updates: pass every logged ``/feedback`` batch to ``model.partial_fit`` in a background thread
            (:mod:`hf_recsys.serving.online`); needs ``feedback_log``.
        update_options: keyword options of those ``partial_fit`` calls (e.g. ``{"epochs": 1}``).
        fast_path: answer well-formed ``/recommend`` and ``/similar`` requests before FastAPI's routing
            (:mod:`hf_recsys.serving.fastpath`; the same answers, errors still answered by the app).

    Returns:
        The app; run it with uvicorn (``serve`` does).
    """
    model.eval()
    lock = threading.Lock()  # held by every model call; online updates take it to change the model

    def locked(fn):
        def call(*args):
            with lock:
                return fn(*args)

        return call

    batchers = {
        "recommend": MicroBatcher(locked(lambda key, p: _recommend_batch(model, key, p)), max_batch, max_wait_ms),
        "similar": MicroBatcher(locked(lambda key, p: _similar_batch(model, key, p)), max_batch, max_wait_ms),
    }
    batchers["similar"].executor = batchers["recommend"].executor  # one model thread for everything
    log = FeedbackLog(feedback_log) if feedback_log is not None else None
    updater = None
    if online_updates:
        if log is None:
            raise ValueError("online_updates needs a feedback_log (--feedback-log FILE): events are logged first.")
        from .online import OnlineUpdater

        updater = OnlineUpdater(model, lock, **(update_options or {}))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for b in batchers.values():
            b.start()
        yield
        for b in batchers.values():
            await b.stop()
        if updater is not None:
            updater.close()

    async def check_token(request: Request) -> None:  # async: a sync dependency costs a thread hop per request
        if token is None:
            return
        given = request.headers.get("authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})

    app = FastAPI(title=f"hf-recsys: {model.config.model_type}", lifespan=lifespan)
    app.state.batchers = batchers
    app.state.updater = updater
    guarded = [Depends(check_token)]

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        detail = jsonable_encoder([{k: v for k, v in e.items() if k != "ctx"} for e in exc.errors()])
        return JSONResponse(status_code=422, content={"error": _field_message(exc), "detail": detail})

    @app.exception_handler(UnknownIdError)
    async def _unknown(request: Request, exc: UnknownIdError):
        return JSONResponse(status_code=404, content={"error": str(exc)})

    @app.exception_handler(NotImplementedError)
    async def _unsupported(request: Request, exc: NotImplementedError):
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.exception_handler(ValueError)
    async def _bad_value(request: Request, exc: ValueError):
        return JSONResponse(status_code=400, content={"error": str(exc)})

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/metadata", dependencies=guarded)
    async def metadata():
        meta = await batchers["recommend"].run(locked(_metadata), model)
        meta["online_updates"] = None if updater is None else updater.snapshot()
        return meta

    async def answer_recommend(req: RecommendRequest) -> dict:
        key = (req.k, req.exclude_seen, tuple(req.items) if req.items else None)
        return {"recommendations": await batchers["recommend"].submit(key, req)}

    async def answer_similar(req: SimilarRequest) -> dict:
        return {"similar": await batchers["similar"].submit((req.k,), req)}

    # the answers are plain JSON types already: JSONResponse skips FastAPI's response encoding (a hot path)
    @app.post("/recommend", dependencies=guarded)
    async def recommend(req: RecommendRequest):
        return JSONResponse(await answer_recommend(req))

    @app.post("/similar", dependencies=guarded)
    async def similar(req: SimilarRequest):
        return JSONResponse(await answer_similar(req))

    if fast_path:
        from .fastpath import FastPath

        async def fast(body: bytes, schema, answer):
            result = await answer(schema.model_validate_json(body))
            app.state.fast_path_answers += 1
            return result

        app.state.fast_path_answers = 0  # requests the fast path answered (the rest went through FastAPI)
        routes = {
            "/recommend": lambda body: fast(body, RecommendRequest, answer_recommend),
            "/similar": lambda body: fast(body, SimilarRequest, answer_similar),
        }
        app.add_middleware(FastPath, routes=routes, token=token)

    @app.post("/score", dependencies=guarded)
    async def score(req: ScoreRequest):
        users = req.users if req.users is not None else ["__history_0"]
        hist = None if req.history is None else [req.history]
        scores = await batchers["recommend"].run(locked(model.score), users, req.items, hist)
        return {"users": req.users, "items": req.items, "scores": _py(scores)}

    @app.post("/feedback", dependencies=guarded)
    async def feedback(req: FeedbackRequest):
        if log is None:
            raise HTTPException(404, "feedback logging is off: start the server with --feedback-log FILE")
        rows = await asyncio.to_thread(log.append, req.events)  # an fsync: not on the model thread
        answer = {"logged": len(rows), "log": os.path.basename(log.path)}
        if updater is not None:
            updater.submit(rows)
            answer["online_updates"] = updater.snapshot()  # applied in the background: see GET /metadata
        return answer

    return app


def serve(
    model_or_path,
    host: str = "127.0.0.1",
    port: int = 8000,
    revision: str | None = None,
    log_level: str = "info",
    access_log: bool = False,
    **app_kwargs,
) -> None:
    """Load a model (folder or Hub repo id) if needed and serve it with uvicorn until interrupted (without a line
    of access log per request unless ``access_log``: formatting it is a per-request cost)."""
    import uvicorn

    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        from ..hub import load_model

        model = load_model(model_or_path, **({"revision": revision} if revision else {}))
    app = create_app(model, **app_kwargs)
    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=access_log)


__all__ = ["FeedbackLog", "create_app", "serve"]
