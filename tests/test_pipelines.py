"""The ``"recommendation"`` pipeline: a user id, a list of users, an item history; scores and catalogue titles."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from hf_recsys import MostPopularConfig, MostPopularModel, UnknownIdError
from hf_recsys.pipelines import RecommendationPipeline, catalogue_lookup, register_pipeline
from hf_recsys.testing_utils import tiny_log


@pytest.fixture(scope="module")
def fitted():
    register_pipeline()  # the lead calls it from hf_recsys/__init__.py; idempotent
    log = tiny_log()
    return MostPopularModel(MostPopularConfig(weighting="users")).fit(log, show_progress=False), log


@pytest.fixture(scope="module")
def catalogue(fitted):
    _, log = fitted
    items = sorted(log.item_id.unique())
    titles, years = [f"Movie {i}" for i in items], [1990 + i % 30 for i in items]
    return pd.DataFrame({"item_id": items, "title": titles, "year": years})


def _ids(rows):
    return [r["item_id"] for r in rows]


def test_registered_task_builds_the_pipeline(fitted):
    model, _ = fitted
    rec = pipeline("recommendation", model=model)
    assert isinstance(rec, RecommendationPipeline) and rec.model is model


def test_one_user(fitted):
    model, log = fitted
    user = log.user_id.iloc[0]
    rows = pipeline("recommendation", model=model)(user, top_k=5)
    ids, scores = model.recommend([user], k=5)
    assert _ids(rows) == ids[0].tolist()
    np.testing.assert_allclose([r["score"] for r in rows], scores[0])
    assert not set(_ids(rows)) & set(log.loc[log.user_id == user, "item_id"]), "seen items are excluded"
    assert all(type(r["item_id"]) is int and type(r["score"]) is float for r in rows)  # plain Python, JSON-ready


def test_list_of_users_is_one_batch(fitted):
    model, log = fitted
    users = log.user_id.unique()[:4].tolist()
    out = pipeline("recommendation", model=model)(users, top_k=3)
    ids, _ = model.recommend(users, k=3)
    assert [_ids(rows) for rows in out] == ids.tolist()


def test_history_of_a_cold_user(fitted):
    model, log = fitted
    history = log.loc[log.user_id == log.user_id.iloc[0], "item_id"].tolist()[:3]
    rec = pipeline("recommendation", model=model)
    rows = rec({"history": history}, top_k=4)
    ids, _ = model.recommend(["someone new"], k=4, histories={"someone new": history})
    assert _ids(rows) == ids[0].tolist()
    assert not set(history) & set(_ids(rows))
    assert _ids(rec(history=history, top_k=4)) == _ids(rows)  # keyword form
    known = log.user_id.iloc[1]
    mixed = rec([{"history": history}, known], top_k=4)  # cold and known users together
    assert _ids(mixed[0]) == _ids(rows) and _ids(mixed[1]) == model.recommend([known], k=4)[0][0].tolist()


def test_titles_from_an_item_catalogue(fitted, catalogue):
    model, log = fitted
    user = log.user_id.iloc[0]
    rows = pipeline("recommendation", model=model, item_catalogue=catalogue)(user, top_k=3)
    lookup = catalogue.set_index("item_id")
    assert [r["title"] for r in rows] == [lookup.loc[i, "title"] for i in _ids(rows)]
    assert [r["year"] for r in rows] == [lookup.loc[i, "year"] for i in _ids(rows)]
    # a mapping works too, and a per-call catalogue overrides the constructor's
    plain = pipeline("recommendation", model=model)(user, top_k=3, item_catalogue={i: f"#{i}" for i in _ids(rows)})
    assert [r["title"] for r in plain] == [f"#{i}" for i in _ids(rows)]


def test_catalogue_from_a_dataset_with_another_id_column(catalogue):
    import datasets

    ds = datasets.Dataset.from_pandas(catalogue.rename(columns={"item_id": "movieId"}), preserve_index=False)
    lookup = catalogue_lookup(ds, item_column="movieId")
    first = catalogue.iloc[0]
    assert lookup[first.item_id]["title"] == first.title
    with pytest.raises(ValueError, match="item_column"):
        catalogue_lookup(ds)


def test_options_candidates_and_filler(fitted):
    model, log = fitted
    user = log.user_id.iloc[0]
    seen = log.loc[log.user_id == user, "item_id"].tolist()
    rec = pipeline("recommendation", model=model, top_k=2)
    assert len(rec(user)) == 2  # top_k given at construction
    with_seen = rec(user, top_k=30, exclude_seen=False)
    assert set(seen) <= set(_ids(with_seen))
    cands = seen[:2] + [i for i in log.item_id.unique() if i not in seen][:1]
    rows = rec(user, top_k=3, items=cands)
    assert _ids(rows) == [cands[2]], "seen candidates are excluded and no -inf filler is returned"


def test_clear_errors(fitted):
    model, _ = fitted
    rec = pipeline("recommendation", model=model)
    with pytest.raises(UnknownIdError, match="nobody"):
        rec("nobody")
    with pytest.raises(ValueError, match="history"):
        rec({"items": [1, 2]})
    with pytest.raises(ValueError, match="top_k"):
        rec("u1", top_k=0)
    with pytest.raises(TypeError, match="colour"):
        rec("u1", colour="red")


def test_model_without_history_support_refuses_histories(fitted):
    _, log = fitted

    class NoHistory(MostPopularModel):
        supports_history = False

    model = NoHistory(MostPopularConfig()).fit(log, show_progress=False)
    with pytest.raises(NotImplementedError, match="histories"):
        pipeline("recommendation", model=model)({"history": [7]})


def test_pipeline_from_a_saved_folder(fitted, tmp_path):
    model, log = fitted
    model.save_pretrained(tmp_path)
    users = log.user_id.unique()[:3].tolist()
    out = pipeline("recommendation", model=str(tmp_path))(users, top_k=4)
    assert [_ids(rows) for rows in out] == model.recommend(users, k=4)[0].tolist()


@pytest.mark.slow
def test_movielens_titles(ml_latest_small):
    from hf_recsys.data.loading import load_interactions

    ratings = load_interactions(ml_latest_small / "ratings.csv")
    movies = pd.read_csv(ml_latest_small / "movies.csv").rename(columns={"movieId": "item_id"})
    model = MostPopularModel(MostPopularConfig()).fit(ratings, show_progress=False)
    rows = pipeline("recommendation", model=model, item_catalogue=movies)(1, top_k=3)
    counts = ratings.to_pandas().item_id.value_counts()
    seen = set(ratings.filter(lambda b: [u == 1 for u in b["user_id"]], batched=True)["item_id"])
    expected = [i for i in counts.index if i not in seen][:3]  # an independent count, not the model's
    assert _ids(rows) == expected
    titles = movies.set_index("item_id").loc[expected, "title"].tolist()
    assert [r["title"] for r in rows] == titles and all(r["genres"] for r in rows)
