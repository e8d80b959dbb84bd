"""The user simulator: reproducible, vectorised == one session at a time, position bias, satiation, leaving."""

from __future__ import annotations

import numpy as np
import pytest

from hf_recsys.simulation import SimulatorConfig, UserSimulator, hashed_uniforms, item_genre_matrix


def _sim(num_users=6, num_items=40, seed=0, **kwargs):
    rel = np.random.default_rng(seed).normal(size=(num_users, num_items))
    genres = np.zeros((num_items, 3), np.float32)
    genres[np.arange(num_items), np.arange(num_items) % 3] = 1
    kwargs.setdefault("slate_size", 4)
    return UserSimulator(rel, item_genres=genres, **kwargs)


def _random_slates(rng, n, k, num_items):
    return np.argsort(rng.random((n, num_items)), axis=1)[:, :k]


def _rollout(sim, seed, options=None, policy_seed=1):
    obs, _ = sim.reset(seed=seed, options=options)
    rng = np.random.default_rng(policy_seed)
    rewards, clicks = [], []
    while obs["active"].any():
        slates = _random_slates(rng, len(obs["user"]), sim.config.slate_size, sim.num_items)
        obs, r, term, trunc, info = sim.step(slates)
        rewards.append(r)
        clicks.append(info["clicked_item"])
    return obs, np.array(rewards), np.array(clicks)


def test_reproducible_with_a_seed():
    a = _rollout(_sim(num_sessions=20), seed=3)
    b = _rollout(_sim(num_sessions=20), seed=3)
    c = _rollout(_sim(num_sessions=20), seed=4)
    assert np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])
    assert np.array_equal(a[0]["clicks"], b[0]["clicks"])
    assert a[1].shape != c[1].shape or not np.array_equal(a[2], c[2])
    assert a[1].sum() > 0  # something was clicked


def test_vectorised_equals_one_session_at_a_time():
    sim = _sim(max_steps=6, leave_no_click=0.2)
    users = np.array([0, 3, 3, 5, 1])
    slates_rng = np.random.default_rng(7)
    plan = [_random_slates(slates_rng, len(users), 4, sim.num_items) for _ in range(6)]

    def run(idx):
        obs, _ = sim.reset(seed=11, options={"users": users[idx], "session_ids": np.asarray(idx)})
        out = []
        for slates in plan:
            obs, r, term, trunc, info = sim.step(slates[idx])
            out.append(np.stack([r, term, trunc, info["clicked_item"]], 1))
        return np.concatenate(out, 1), obs["clicks"]

    together, clicks_together = run(np.arange(len(users)))
    for j in range(len(users)):
        alone, clicks_alone = run(np.array([j]))
        np.testing.assert_array_equal(together[j], alone[0])
        np.testing.assert_array_equal(clicks_together[j], clicks_alone[0])


def test_position_bias_is_measurable():
    n, k = 20_000, 4

    def click_share(bias):
        sim = UserSimulator(
            np.zeros((1, 8)),
            slate_size=k,
            position_bias=bias,
            no_click_utility=0.0,
            genre_satiation=0.0,
            num_sessions=n,
        )
        sim.reset(seed=0, options={"users": np.zeros(n, dtype=np.int64)})
        slates = _random_slates(np.random.default_rng(0), n, k, 8)  # items do not matter: relevance is flat
        _, _, _, _, info = sim.step(slates)
        pos = info["clicked_position"]
        return np.bincount(pos[pos >= 0], minlength=k) / n, info["click_probs"][0]

    share, probs = click_share(1.0)
    expected = 1.0 / np.arange(1, k + 1)  # exp(-log(1 + j))
    np.testing.assert_allclose(probs[1:], expected / (1 + expected.sum()), rtol=1e-9)
    np.testing.assert_allclose(share, probs[1:], atol=0.01)  # sampled clicks follow the logit
    assert share[0] / share[1] == pytest.approx(2.0, rel=0.1)
    flat, _ = click_share(0.0)
    assert flat.max() - flat.min() < 0.02


def test_satiation_is_measurable():
    """Clicks on one genre fall step after step when satiation is on, and not when it is off."""
    n, k, steps = 4000, 3, 5
    num_items = k * steps
    genres = np.zeros((num_items, 2), np.float32)
    genres[:, 0] = 1  # all the same genre
    plan = np.arange(num_items).reshape(steps, k)  # new items every step: no repeat, no boredom

    def click_rates(satiation):
        sim = UserSimulator(
            np.zeros((1, num_items)),
            item_genres=genres,
            slate_size=k,
            genre_satiation=satiation,
            satiation_decay=1.0,
            no_click_utility=0.0,
            position_bias=0.0,
            leave_no_click=0.0,
            leave_after_click=0.0,
            num_sessions=n,
        )
        sim.reset(seed=1, options={"users": np.zeros(n, dtype=np.int64)})
        return np.array([sim.step(np.tile(plan[t], (n, 1)))[1].mean() for t in range(steps)])

    on, off = click_rates(2.0), click_rates(0.0)
    assert np.all(np.diff(on) < 0) and on[-1] < 0.7 * on[0]
    assert np.abs(off - 0.75).max() < 0.03  # 3 items of utility 0 against a no-click of 0: 3/4


def test_repeats_and_boredom_lower_utility():
    sim = _sim(num_sessions=1, genre_satiation=0.0, leave_no_click=0.0, leave_after_click=0.0)
    sim.reset(seed=0, options={"users": np.array([0])})
    slate = np.array([[0, 1, 2, 3]])
    before = sim.utilities(slate)
    _, _, _, _, info = sim.step(slate)
    after = sim.utilities(slate)
    drop = before - after
    clicked = info["clicked_position"][0]
    for j in range(4):
        expected = 0.5 + (4.0 if j == clicked else 0.0)  # boredom, plus the repeat penalty of the clicked item
        assert drop[0, j] == pytest.approx(expected)


def test_history_counts_as_consumed():
    import scipy.sparse as sp

    rel = np.zeros((2, 10))
    hist = sp.csr_matrix(([1.0], ([0], [5])), shape=(2, 10))
    sim = UserSimulator(rel, history=hist, slate_size=2)
    sim.reset(seed=0, options={"users": np.array([0, 1])})
    u = sim.utilities(np.array([[5, 6], [5, 6]]))
    assert u[0, 0] == pytest.approx(-4.0) and u[1, 0] == pytest.approx(0.0)


def test_leaving_and_truncation():
    sim = _sim(num_sessions=30, no_click_utility=50.0, leave_no_click=1.0)
    sim.reset(seed=0)
    obs, r, term, trunc, _ = sim.step(np.tile(np.arange(4), (30, 1)))
    assert term.all() and not trunc.any() and not obs["active"].any() and r.sum() == 0
    obs, r, term, trunc, info = sim.step(np.full((30, 4), -5))  # finished sessions: slates ignored
    assert not term.any() and not info["was_active"].any()
    sim = _sim(num_sessions=10, max_steps=3, leave_no_click=0.0, leave_after_click=0.0)
    obs, _ = sim.reset(seed=0)
    for t in range(3):
        obs, r, term, trunc, _ = sim.step(_random_slates(np.random.default_rng(t), 10, 4, 40))
    assert trunc.all() and not term.any() and (obs["step"] == 3).all()


def test_hashed_uniforms_are_uniform_and_keyed():
    u = hashed_uniforms(0, np.arange(50_000), np.zeros(50_000, dtype=np.int64), 2)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.005
    assert abs(np.corrcoef(u[:, 0], u[:, 1])[0, 1]) < 0.02
    np.testing.assert_array_equal(u[7], hashed_uniforms(0, np.array([7]), np.array([0]), 2)[0])


def test_bad_input_is_refused():
    sim = _sim(num_sessions=2)
    with pytest.raises(RuntimeError, match="reset"):
        sim.step(np.zeros((2, 4), dtype=np.int64))
    sim.reset(seed=0)
    with pytest.raises(ValueError, match="shape"):
        sim.step(np.zeros((2, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="twice"):
        sim.step(np.array([[0, 1, 2, 3], [1, 1, 2, 3]]))
    with pytest.raises(ValueError, match=r"\[0, 40\)"):
        sim.step(np.array([[0, 1, 2, 40], [0, 1, 2, 3]]))
    with pytest.raises(ValueError, match="int array"):
        sim.step(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="user indices"):
        sim.reset(seed=0, options={"users": np.array([0, 6])})
    with pytest.raises(ValueError, match="unknown reset options"):
        sim.reset(seed=0, options={"user": 1})
    with pytest.raises(ValueError, match="NaN"):
        UserSimulator(np.full((2, 5), np.nan), slate_size=2)
    with pytest.raises(ValueError, match="leave_no_click"):
        SimulatorConfig(leave_no_click=1.5)
    with pytest.raises(ValueError, match="slate_size"):
        SimulatorConfig(slate_size=0)


def test_from_model_and_genres():
    import datasets

    from hf_recsys import MostPopularConfig, MostPopularModel
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log()
    model = MostPopularModel(MostPopularConfig()).fit(log, show_progress=False)
    ids = model.item_vocab.ids.tolist()
    items = datasets.Dataset.from_dict(
        {"item_id": ids + [999_999], "genres": [["A", "B"] if i % 2 else ["A"] for i in ids] + [["C"]]}
    )
    genres, names = item_genre_matrix(items, model.item_vocab)
    assert names == ["A", "B", "C"] and genres.shape == (len(ids), 3) and genres[:, 2].sum() == 0
    sim = UserSimulator.from_model(model, items=items, slate_size=3, num_sessions=4)
    assert sim.relevance.shape == (model.config.num_users, model.config.num_items)
    np.testing.assert_allclose(sim.relevance.mean(1), 0, atol=1e-5)
    obs, _ = sim.reset(seed=0)
    assert sim.user_ids(obs["user"]).tolist() == model.user_vocab.decode(obs["user"]).tolist()
    # the users' logged items count as consumed
    u = obs["user"][0]
    seen = model.seen_items[u].indices[:3]
    assert (sim.utilities(np.tile(seen, (4, 1)))[0] <= sim.relevance[u, seen] - 4.0 + 1e-6).all()


def test_gymnasium_env_passes_the_checker():
    pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    sim = UserSimulator(np.random.default_rng(0).normal(size=(5, 2000)), slate_size=3)
    env = sim.as_gym_env()
    env.action_space.seed(0)  # random slates of 3 among 2000 items: no repeated item with this seed
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1, options={"user": 2})
    obs, reward, terminated, truncated, info = env.step(np.array([0, 1, 2]))
    assert obs["user"] == 2 and reward in (0.0, 1.0) and "click_probs" in info
