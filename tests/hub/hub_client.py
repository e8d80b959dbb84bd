"""The client side of the Hub tests, run in fresh subprocesses with ``HF_ENDPOINT`` pointing at the test server.

``python hub_client.py push SPEC OUT`` fits and pushes every case of ``SPEC`` (and the revision, failing and partial
scenarios); ``python hub_client.py load SPEC PUSHED OUT`` loads them back by repo id in a new process. Both write
JSON results that the tests compare; exceptions are recorded as ``{"error": type, "message": str}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import urllib.request


def _case_model(case: dict, seed: int):
    import torch

    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log(seed=seed)
    if case.get("builder"):
        module, func = case["builder"].split(":")
        return getattr(importlib.import_module(module), func)(log), log
    torch.manual_seed(seed)
    model = AutoModelForRecommendation.for_model(case["model_type"], **case.get("config_kwargs", {}))
    return model.fit(log, show_progress=False, **case.get("fit_kwargs", {})), log


def _py(x):
    return x.item() if hasattr(x, "item") else x


def _recs(model, users: list, histories: dict | None) -> dict:
    ids, scores = model.recommend(users, k=5)
    out = {"ids": [[_py(i) for i in row] for row in ids], "scores": scores.tolist()}
    if histories and model.supports_history:
        cold = list(histories)
        cids, cscores = model.recommend(cold, k=5, histories=histories)
        out["cold"] = {"ids": [[_py(i) for i in row] for row in cids], "scores": cscores.tolist()}
    return out


def _fail_commits(repo: str, times: int) -> None:
    url = f"{os.environ['HF_ENDPOINT']}/_testing/fail-commits/{repo}"
    body = json.dumps({"times": times}).encode()
    urllib.request.urlopen(urllib.request.Request(url, data=body, method="POST"))


def _error(exc: BaseException) -> dict:
    return {"error": type(exc).__name__, "bases": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}


def _queries(log) -> tuple[list, dict]:
    users = [_py(u) for u in log["user_id"].unique()[:8]]
    history = [_py(i) for i in log.loc[log.user_id == users[0], "item_id"]][:4]
    return users, {"cold-user": history}


def push(spec: dict) -> dict:
    from huggingface_hub import HfApi

    out = {}
    for case in spec["cases"]:
        out[case["name"]] = res = {}
        try:
            _push_case(HfApi(), case, res)
        except Exception as exc:  # noqa: BLE001 - one family's failure must not hide the others' results
            res["setup_error"] = _error(exc)
    out["__datasets__"] = _try(_push_datasets)
    return out


def _push_datasets() -> dict:
    """An interaction log and an item catalogue pushed as Hub datasets; what was pushed, as JSON records."""
    import pandas as pd

    from hf_recsys.hub import push_interactions
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log(seed=4)
    items = sorted(log.item_id.unique().tolist())
    catalogue = pd.DataFrame({"item_id": items, "title": [f"Film {i}" for i in items]})
    push_interactions(log, "org/tiny-log")
    push_interactions(catalogue, "org/tiny-catalogue")
    return {"log": log.to_dict("records"), "catalogue": catalogue.to_dict("records")}


def _push_case(api, case: dict, res: dict) -> None:
    from hf_recsys.hub import push_to_hub, save_for_hub

    repo = f"org/{case['name']}"
    model_a, log = _case_model(case, seed=0)
    model_b, _ = _case_model(case, seed=1)
    users, hists = _queries(log)
    res["queries"] = {"users": users, "histories": hists}
    res["expected_a"], res["expected_b"] = _recs(model_a, users, hists), _recs(model_b, users, hists)
    card = case.get("card_kwargs", {})
    res["commit_a"] = push_to_hub(model_a, repo, **card).oid
    res["commit_b"] = push_to_hub(model_b, repo, revision="dev", **card).oid
    # a push to main that dies half-way (every commit attempt fails, retries included): main must still serve A
    _fail_commits(repo, times=100)
    try:
        push_to_hub(model_b, repo)
        res["failed_push"] = None
    except Exception as exc:  # noqa: BLE001 - recorded for the test
        res["failed_push"] = _error(exc)
    _fail_commits(repo, times=0)
    # a non-atomic upload that stopped after two files, and a repo whose files come from two different saves
    with tempfile.TemporaryDirectory() as d_a, tempfile.TemporaryDirectory() as d_b:
        save_for_hub(model_a, d_a, repo_id=repo)
        save_for_hub(model_b, d_b, repo_id=repo)
        api.create_repo(f"{repo}-partial", exist_ok=True)
        for f in ("config.json", "model.safetensors"):
            api.upload_file(path_or_fileobj=os.path.join(d_a, f), path_in_repo=f, repo_id=f"{repo}-partial")
        api.create_repo(f"{repo}-mixed", exist_ok=True)
        api.upload_folder(folder_path=d_a, repo_id=f"{repo}-mixed")
        api.upload_file(
            path_or_fileobj=os.path.join(d_b, "seen_items.safetensors"),
            path_in_repo="seen_items.safetensors",
            repo_id=f"{repo}-mixed",
        )
    push_to_hub(model_a, f"{repo}-private", private=True)
    res["card"] = open(api.hf_hub_download(repo, "README.md")).read()


def _try(fn, *args, **kwargs) -> dict:
    try:
        return fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - recorded for the test
        return _error(exc)


def load(spec: dict, pushed: dict) -> dict:
    from hf_recsys.pipelines import register_pipeline

    register_pipeline()
    out = {}
    for case in spec["cases"]:
        name = case["name"]
        if name in pushed and "setup_error" not in pushed[name]:
            out[name] = _load_case(f"org/{name}", pushed[name])
    out["__datasets__"] = _try(_load_datasets)
    return out


def _load_datasets() -> dict:
    from hf_recsys.data.loading import load_interactions
    from hf_recsys.hub import load_interactions_from_hub

    return {
        "log": _try(lambda: load_interactions("org/tiny-log").to_pandas().to_dict("records")),
        "log_hub": _try(lambda: load_interactions_from_hub("org/tiny-log").to_pandas().to_dict("records")),
        "catalogue": _try(lambda: load_interactions_from_hub("org/tiny-catalogue").to_pandas().to_dict("records")),
        "missing": _try(load_interactions_from_hub, "org/no-such-dataset"),
    }


def _load_case(repo: str, pushed: dict) -> dict:
    from transformers import pipeline

    from hf_recsys import AutoModelForRecommendation
    from hf_recsys.hub import load_model

    users, hists = pushed["queries"]["users"], pushed["queries"]["histories"]

    def recs(loader, *args, **kwargs):
        model = loader(*args, **kwargs)
        return {**_recs(model, users, hists), "class": type(model).__name__}

    def pipe_recs():
        rows = pipeline("recommendation", model=repo)(users, top_k=5)
        return {
            "ids": [[r["item_id"] for r in row] for row in rows],
            "scores": [[r["score"] for r in row] for row in rows],
        }

    auto = AutoModelForRecommendation.from_pretrained
    return {
        "main": _try(recs, auto, repo),
        "main_checked": _try(recs, load_model, repo),
        "dev": _try(recs, auto, repo, revision="dev"),
        "commit_a": _try(recs, load_model, repo, revision=pushed["commit_a"]),
        "missing_repo": _try(recs, auto, "org/no-such-model"),
        "missing_repo_checked": _try(recs, load_model, "org/no-such-model"),
        "missing_revision": _try(recs, auto, repo, revision="no-branch"),
        "partial_checked": _try(recs, load_model, f"{repo}-partial"),
        "partial_auto": _try(recs, auto, f"{repo}-partial"),
        "mixed_checked": _try(recs, load_model, f"{repo}-mixed"),
        "private_no_token": _try(recs, load_model, f"{repo}-private", token=False),
        "private_token": _try(recs, load_model, f"{repo}-private"),
        "pipeline": _try(pipe_recs),
    }


if __name__ == "__main__":
    command, spec_path, *rest = sys.argv[1:]
    spec = json.loads(open(spec_path).read())
    if command == "push":
        result = push(spec)
    else:
        result = load(spec, json.loads(open(rest[0]).read()))
        rest = rest[1:]
    with open(rest[0], "w") as f:
        json.dump(result, f, indent=1)
