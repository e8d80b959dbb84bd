"""Shared test helpers: the recommender contract-test mixin every model joins, and the real-data locator.

Plugins use them from their own tests::

    from hf_recsys.testing_utils import RecommenderContractTests

    class TestEASE(RecommenderContractTests):
        model_type = "ease"
        config_kwargs = {"l2": 10.0}
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

ML_LATEST_SMALL_ENV = "HF_RECSYS_ML_LATEST_SMALL"


def ml_latest_small_path() -> Path | None:
    """Folder of MovieLens ml-latest-small: ``$HF_RECSYS_ML_LATEST_SMALL``, else ``../shared/data/ml-latest-small``
    beside the checkout; ``None`` when it is absent (tests then skip)."""
    env = os.environ.get(ML_LATEST_SMALL_ENV)
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[1]
    candidates.append(repo.parent / "shared" / "data" / "ml-latest-small")
    for c in candidates:
        if (c / "ratings.csv").is_file():
            return c
    return None


def tiny_log(num_users: int = 40, num_items: int = 25, per_user: int = 8, seed: int = 0):
    """A small implicit-feedback log with latent structure (two taste groups), as a pandas DataFrame with string
    user ids, int item ids, ratings and timestamps. Deterministic for a seed."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    group = rng.integers(0, 2, num_users)
    pref = np.where(group[:, None] == (np.arange(num_items)[None, :] % 2), 3.0, 0.3)
    pref *= 1.0 / (1.0 + np.arange(num_items))[None, :] ** 0.3
    rows = []
    for u in range(num_users):
        p = pref[u] / pref[u].sum()
        items = rng.choice(num_items, size=per_user, replace=False, p=p)
        for t, i in enumerate(items):
            rows.append((f"u{u}", int(i) * 10 + 7, float(rng.integers(1, 6)), 1_600_000_000 + 3600 * t + u))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def partial_fit_log(log):
    """New interactions for :func:`tiny_log`'s log, as ``partial_fit`` contract tests use them: two new users
    ("new-a" on the even items, "new-b" on the odd ones), two new items (9001, 9002) and a known user on them,
    an hour after the log, with its columns."""
    import pandas as pd

    items = sorted(log["item_id"].unique().tolist())
    t0 = int(log["timestamp"].max()) + 3600
    rows = [("new-a", i, 5.0, t0 + j) for j, i in enumerate(items[0:12:2] + [9001])]
    rows += [("new-b", i, 4.0, t0 + j) for j, i in enumerate(items[1:13:2] + [9002])]
    known = log["user_id"].iloc[0]
    rows += [(known, 9001, 3.0, t0 + 20), (known, 9002, 3.0, t0 + 21), ("new-b", 9001, 2.0, t0 + 22)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])[list(log.columns)]


class RecommenderContractTests:
    """The one recommend contract, checked for a model: join with a single class per model.

    Class attributes:
        model_type: the registry key.
        config_kwargs: options for the config.
        fit_kwargs: passed to ``fit``.
        check_similar_items: the model implements ``similar_items``.
    """

    model_type: ClassVar[str]
    config_kwargs: ClassVar[dict[str, Any]] = {}
    fit_kwargs: ClassVar[dict[str, Any]] = {}
    check_similar_items: ClassVar[bool] = False

    # -- fixtures ---------------------------------------------------------------------------------
    @classmethod
    def build_model(cls):
        from hf_recsys import AutoModelForRecommendation

        return AutoModelForRecommendation.for_model(cls.model_type, **cls.config_kwargs)

    @classmethod
    def fit_model(cls, model, log):
        """Override for models that are not fitted by ``fit`` (e.g. trained with the trainer)."""
        return model.fit(log, show_progress=False, **cls.fit_kwargs)

    @classmethod
    def fitted(cls):
        if "_fitted" not in cls.__dict__:
            log = tiny_log()
            cls._log = log
            cls._fitted = cls.fit_model(cls.build_model(), log)
        return cls._fitted, cls._log

    # -- the contract -----------------------------------------------------------------------------
    def test_registered_and_config_builds_model(self):
        from hf_recsys import AutoRecConfig
        from hf_recsys.registry import get_model_spec

        spec = get_model_spec(self.model_type)
        config = AutoRecConfig.for_model(self.model_type, num_users=3, num_items=4, **self.config_kwargs)
        assert isinstance(config, spec.config_class)
        model = spec.model_class(config)
        assert model.config.num_items == 4

    def test_recommend_shapes_order_and_exclude_seen(self):
        model, log = self.fitted()
        users = log["user_id"].unique()[:5].tolist()
        ids, scores = model.recommend(users, k=5)
        assert ids.shape == scores.shape == (5, 5)
        assert np.all(np.diff(scores, axis=1) <= 1e-6), "scores must be sorted best first"
        for u, row in zip(users, ids):
            seen = set(log.loc[log.user_id == u, "item_id"])
            assert not seen & set(row.tolist()), f"seen items recommended to {u}"
        ids_all, _ = model.recommend(users, k=5, exclude_seen=False)
        assert ids_all.shape == (5, 5)

    def test_recommend_restricted_to_candidates(self):
        model, log = self.fitted()
        cands = sorted(log["item_id"].unique().tolist())[:6]
        ids, _ = model.recommend(log["user_id"].unique()[:3].tolist(), k=3, items=cands, exclude_seen=False)
        assert set(ids.ravel().tolist()) <= set(cands)

    def test_score_agrees_with_recommend(self):
        model, log = self.fitted()
        user = log["user_id"].iloc[0]
        ids, scores = model.recommend([user], k=4)
        np.testing.assert_allclose(model.score([user], ids[0].tolist())[0], scores[0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(model.score_pairs([user] * 4, ids[0].tolist()), scores[0], rtol=1e-5, atol=1e-5)

    def test_unknown_user_is_a_clear_error(self):
        from hf_recsys import UnknownIdError

        model, _ = self.fitted()
        try:
            model.recommend(["no-such-user"], k=3)
        except UnknownIdError as exc:
            assert "no-such-user" in str(exc)
        else:
            raise AssertionError("an unknown user must raise UnknownIdError")

    def test_history_for_unseen_user(self):
        model, log = self.fitted()
        user = log["user_id"].iloc[0]
        history = log.loc[log.user_id == user, "item_id"].tolist()
        if not model.supports_history:
            try:
                model.recommend(["new-user"], k=3, histories={"new-user": history})
            except NotImplementedError:
                return
            raise AssertionError("a model without supports_history must refuse histories")
        ids, scores = model.recommend(["new-user"], k=3, histories={"new-user": history})
        assert ids.shape == (1, 3) and np.isfinite(scores).all()
        assert not set(history) & set(ids[0].tolist())

    def test_save_load_roundtrips_give_identical_recommendations(self):
        import transformers

        from hf_recsys import AutoModelForRecommendation

        model, log = self.fitted()
        users = log["user_id"].unique()[:8].tolist()
        expected = model.recommend(users, k=5)
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            assert any(f.endswith(".safetensors") for f in os.listdir(d))
            assert not any(f.endswith((".bin", ".pkl", ".pt")) for f in os.listdir(d)), "weights must be safetensors"
            for loader in (AutoModelForRecommendation.from_pretrained, transformers.AutoModel.from_pretrained):
                loaded = loader(d)
                assert type(loaded) is type(model)
                assert loaded.user_vocab == model.user_vocab and loaded.item_vocab == model.item_vocab
                got = loaded.recommend(users, k=5)
                np.testing.assert_array_equal(got[0], expected[0])
                np.testing.assert_allclose(got[1], expected[1], rtol=1e-6)
                if not loaded.trainable:
                    assert not any(p.requires_grad for p in loaded.parameters()), "fitted weights must stay frozen"

    @classmethod
    def partial_fit_kwargs(cls, model, new_log) -> dict[str, Any]:
        """Options for ``partial_fit`` in the contract test (override, e.g. content for the new items)."""
        return {}

    def test_partial_fit_new_users_and_items(self):
        """``partial_fit`` with unseen users and items: they join, new users are recommended from the update (their
        update items are their seen items, different histories give different lists), and save -> load keeps it."""
        import copy

        from hf_recsys import AutoModelForRecommendation

        model, log = self.fitted()
        model = copy.deepcopy(model)
        new = partial_fit_log(log)
        model.partial_fit(new, **self.partial_fit_kwargs(model, new))
        assert {"new-a", "new-b"} <= set(model.user_vocab.ids.tolist())
        assert {9001, 9002} <= set(model.item_vocab.ids.tolist())
        ids, scores = model.recommend(["new-a", "new-b", log["user_id"].iloc[0]], k=3)  # no UnknownIdError
        assert ids.shape == (3, 3) and np.isfinite(scores).all()
        for row, user in zip(ids, ["new-a", "new-b"]):
            assert not set(new.loc[new.user_id == user, "item_id"]) & set(row.tolist()), "update items are seen"
        all_items = model.item_vocab.ids.tolist()
        assert ids[0].tolist() != ids[1].tolist() or not np.allclose(*model.score(["new-a", "new-b"], all_items)), (
            "new users with different update histories got the same recommendations and scores"
        )
        got = model.recommend([log["user_id"].iloc[1]], k=2, items=[9001, 9002], exclude_seen=False)
        assert sorted(got[0][0].tolist()) == [9001, 9002], "the new items must be recommendable"
        with tempfile.TemporaryDirectory() as d:
            model.save_pretrained(d)
            loaded = AutoModelForRecommendation.from_pretrained(d)
            got = loaded.recommend(["new-a", "new-b"], k=3)
            np.testing.assert_array_equal(got[0], ids[:2])

    def test_similar_items(self):
        model, log = self.fitted()
        item = log["item_id"].iloc[0]
        if not self.check_similar_items:
            return
        ids, scores = model.similar_items([item], k=3)
        assert ids.shape == (1, 3) and item not in ids[0].tolist()
        assert np.all(np.diff(scores, axis=1) <= 1e-6)


__all__ = ["ML_LATEST_SMALL_ENV", "RecommenderContractTests", "ml_latest_small_path", "partial_fit_log", "tiny_log"]
