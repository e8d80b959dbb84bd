"""Agents in the simulator: the greedy recommender, an exploration policy with its logged propensities, the session
state of a sequential model, and the log feeding the REINFORCE policy and the off-policy estimators."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.policies import SoftmaxPolicy, ope_inputs
from hf_recsys.policies.reinforce import TopKReinforceRecommender
from hf_recsys.simulation import UserSimulator
from hf_recsys.simulation.rollout import GreedyAgent, PolicyAgent, SessionState, run_sessions
from hf_recsys.testing_utils import tiny_log

K = 3


@pytest.fixture(scope="module")
def world():
    log = tiny_log()
    cfg = CausalSequentialConfig(max_sequence_length=10, hidden_size=16, num_layers=1, num_heads=1, epochs=1)
    model = CausalSequentialRecommender(cfg).fit(log, show_progress=False)
    sim = UserSimulator.from_model(model, slate_size=K, max_steps=5, leave_no_click=0.2, no_click_utility=1.0)
    return model, sim, log


def test_greedy_agent_skips_seen_and_clicked_items_and_restores_state(world):
    model, sim, _ = world
    before = model.user_history.clone()
    shown = []
    run_sessions(sim, GreedyAgent(model), seed=0, on_step=lambda s, obs, rows: shown.append(obs))
    a = run_sessions(sim, GreedyAgent(model), seed=0, log=True)
    b = run_sessions(sim, GreedyAgent(model), seed=0)
    assert torch.equal(model.user_history, before)  # the session states were put back
    np.testing.assert_array_equal(a.returns, b.returns)
    df = a.log.to_pandas()
    assert (df["propensity"] == 1).all() and len(df) == a.lengths.sum() * K
    items = model.item_vocab.encode(df["item_id"].tolist())
    users = model.user_vocab.encode(df["user_id"].tolist())
    assert model.seen_items[users, items].sum() == 0  # never an item of the user's log
    clicked = df[df["reward"] > 0]
    for _, row in clicked.iterrows():  # a clicked item is not shown again in the session
        later = df[(df["session_id"] == row["session_id"]) & (df["step"] > row["step"])]
        assert row["item_id"] not in set(later["item_id"])
    assert a.returns.sum() == df["reward"].sum() > 0


def test_session_state_is_history_then_clicks(world):
    model, _, _ = world
    state = SessionState(model)
    try:
        state.apply(np.array([0, 1]), np.array([[4, -1, 7], [-1, -1, -1]]))
        assert model.user_history[0, -2:].tolist() == [5, 8]
        assert torch.equal(model.user_history[0, :-2], state.original[0, 2:])
        assert torch.equal(model.user_history[1], state.original[1])
        with pytest.raises(ValueError, match="one session per user"):
            state.apply(np.array([0, 0]), np.full((2, 1), -1))
    finally:
        state.restore()
    assert torch.equal(model.user_history, state.original)


def test_policy_agent_logs_feed_reinforce_and_ope(world):
    model, sim, log = world
    policy = SoftmaxPolicy(model, temperature=1.0, exclude_seen=True, n_samples=20, seed=0)
    res = run_sessions(sim, PolicyAgent(policy), seed=1, log=True)
    df = res.log.to_pandas()
    for col in ("session_id", "step", "action_propensity", "propensity", "cascade_propensity", "reward"):
        assert col in df.columns
    assert ((df["action_propensity"] > 0) & (df["action_propensity"] <= 1)).all()
    # the policy's unbiased inverses reach the log (exact at position 0: one over the first item's probability)
    assert {"inverse_propensity", "inverse_cascade_propensity"} <= set(df.columns)
    first_inv = df.loc[df["position"] == 0, ["inverse_propensity", "propensity"]]
    np.testing.assert_allclose(first_inv["inverse_propensity"], 1 / first_inv["propensity"], rtol=1e-9)
    assert (df["inverse_propensity"] >= 1).all()
    first = df[df["position"] == 0]
    np.testing.assert_allclose(first["action_propensity"], first["propensity"], rtol=1e-9)  # exact at position 0
    assert df.groupby("slate_id")["reward"].sum().max() <= 1
    x = ope_inputs(res.log)
    assert x.reward.sum() == res.returns.sum()
    rl = TopKReinforceRecommender.from_recommender(model, slate_size=K, epochs=1, batch_size=32)
    rl.fit(log, logged_slates=res.log, show_progress=False)
    assert len(rl.last_training_history.step_losses) == int(np.ceil(len(first) / 32))
