"""REINFORCE with the top-K off-policy correction: the weights, the logged-slate reader, training through the
engine on a tiny synthetic log, save/load and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.policies.reinforce import (
    LoggedSlates,
    TopKReinforceConfig,
    TopKReinforceRecommender,
    left_pack,
    session_tokens,
    topk_correction_weights,
)
from hf_recsys.testing_utils import tiny_log

K = 3


@pytest.fixture(scope="module")
def base():
    log = tiny_log()
    cfg = CausalSequentialConfig(max_sequence_length=10, hidden_size=16, num_layers=1, num_heads=1, epochs=1)
    return CausalSequentialRecommender(cfg).fit(log, show_progress=False), log


def _logged(model, target, n=240, seed=0, beta=None):
    """Uniformly random slates of K items; only ``target`` is ever clicked."""
    users, items = model.user_vocab.ids, model.item_vocab.ids
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n):
        shown = rng.choice(len(items), K, replace=False)
        for j, i in enumerate(shown):
            p = 1.0 / len(items) if beta is None else beta
            rows.append((s, users[s % len(users)], items[i], j, float(items[i] == target), p))
    return pd.DataFrame(rows, columns=["slate_id", "user_id", "item_id", "position", "reward", "action_propensity"])


def test_correction_weights_by_hand():
    pi = torch.tensor([0.5, 0.01, 0.2])
    beta = torch.tensor([0.25, 0.001, 0.4])
    w = topk_correction_weights(pi, beta, k=4, weight_cap=5.0)
    ratio = torch.tensor([2.0, 5.0, 0.5])  # 0.01 / 0.001 = 10, capped at 5
    lam = 4 * (1 - pi) ** 3
    torch.testing.assert_close(w, ratio * lam)
    torch.testing.assert_close(topk_correction_weights(pi, beta, 4, 5.0, topk_correction=False), ratio)
    # lambda_K: an item the policy already shows (large pi) is pushed less than a rarely shown one
    assert w[0] / ratio[0] < w[2] / ratio[2] < w[1] / ratio[1]
    assert not topk_correction_weights(pi.requires_grad_(), beta, 4, 5.0).requires_grad


def test_weights_are_capped_in_the_loss(base):
    model, _ = base
    policy = TopKReinforceRecommender.from_recommender(model, slate_size=K, weight_cap=2.0)
    tokens = model.user_history[:4]
    actions = torch.tensor([[0, 1, 2]] * 4)
    tiny = torch.full((4, K), 1e-9)  # pi / beta is huge: the cap binds
    returns = torch.ones(4, K)
    out = policy(input_ids=tokens, actions=actions, returns=returns, behaviour_probs=tiny)
    logp = torch.log_softmax(out.scores.float(), -1).gather(1, actions)
    expected = -(2.0 * K * (1 - logp.exp()) ** (K - 1) * logp).sum(1).mean()
    torch.testing.assert_close(out.loss, expected)


def test_corrected_gradient_prefers_the_rewarded_item(base):
    model, log = base
    users, items = list(model.user_vocab.ids), list(model.item_vocab.ids)
    policy = TopKReinforceRecommender.from_recommender(
        model, slate_size=K, epochs=4, learning_rate=1e-2, batch_size=64
    )
    target = items[int(np.argmin(policy.score(users, items).mean(0)))]  # the item the policy likes least
    before = policy.score(users, [target])[:, 0]
    share_before = (policy.recommend(users, k=1, exclude_seen=False)[0][:, 0] == target).mean()
    policy.fit(log, logged_slates=_logged(model, target), show_progress=False)  # through the training engine
    after = policy.score(users, [target])[:, 0]
    share_after = (policy.recommend(users, k=1, exclude_seen=False)[0][:, 0] == target).mean()
    assert share_before < 0.1 and share_after > 0.9
    assert (after > before).all()
    assert len(policy.last_training_history.epoch_losses) == 4


def test_reader_returns_and_session_state(base):
    model, _ = base
    u, it = model.user_vocab.ids, model.item_vocab.ids
    rows = [  # session 7: step 0 clicks item 1, step 1 no click, step 2 clicks item 4; session 9: one step
        (0, u[0], it[0], 0, 0.0, 7, 0), (0, u[0], it[1], 1, 1.0, 7, 0),
        (1, u[0], it[2], 0, 0.0, 7, 1), (1, u[0], it[3], 1, 0.0, 7, 1),
        (2, u[0], it[4], 0, 1.0, 7, 2), (2, u[0], it[5], 1, 0.0, 7, 2),
        (3, u[1], it[6], 0, 1.0, 9, 0), (3, u[1], it[7], 1, 0.0, 9, 0),
    ]  # fmt: skip
    df = pd.DataFrame(rows, columns=["slate_id", "user_id", "item_id", "position", "reward", "session_id", "step"])
    df["action_propensity"] = 0.1
    log = LoggedSlates.from_log(df.sample(frac=1, random_state=0), model.user_vocab, model.item_vocab)
    np.testing.assert_array_equal(log.items, [[0, 1], [2, 3], [4, 5], [6, 7]])
    np.testing.assert_array_equal(log.prior_clicks(), [[-1, -1, -1], [1, -1, -1], [1, -1, -1], [-1, -1, -1]])
    g = 0.5
    ret = log.returns(g)
    np.testing.assert_allclose(ret[0], [0 + g * (0 + g * 1), 1 + g * (0 + g * 1)])
    np.testing.assert_allclose(ret[1], [g * 1, g * 1])
    np.testing.assert_allclose(ret[2], [1, 0])
    np.testing.assert_allclose(log.returns(0.0), log.rewards)
    hist = torch.tensor([[0, 0, 5, 6], [0, 0, 0, 0]])
    clicks = torch.tensor([[2, -1, 3], [-1, -1, 8]])
    assert session_tokens(hist, clicks, 4).tolist() == [[5, 6, 3, 4], [0, 0, 0, 9]]
    assert left_pack(torch.tensor([[0, 3, 0, 4]])).tolist() == [[0, 0, 3, 4]]


def test_save_and_load(base, tmp_path):
    model, _ = base
    policy = TopKReinforceRecommender.from_recommender(model, slate_size=K, weight_cap=3.0)
    users, items = list(model.user_vocab.ids[:3]), list(model.item_vocab.ids)
    np.testing.assert_allclose(policy.score(users, items), model.score(users, items), atol=1e-6)  # warm start
    policy.save_pretrained(tmp_path)
    loaded = TopKReinforceRecommender.from_pretrained(tmp_path)
    assert loaded.config.weight_cap == 3.0 and loaded.config.slate_size == K
    np.testing.assert_allclose(loaded.score(users, items), policy.score(users, items), atol=1e-6)


def test_bad_input_is_refused(base):
    model, log = base
    target = model.item_vocab.ids[3]
    policy = TopKReinforceRecommender.from_recommender(model, slate_size=K, epochs=1)
    good = _logged(model, target, n=12)
    with pytest.raises(ValueError, match="action_propensity"):
        policy.fit(log, logged_slates=good.drop(columns=["action_propensity"]), show_progress=False)
    for bad in (0.0, 1.5, np.nan):
        with pytest.raises(ValueError, match=r"propensity|no .propensity."):
            policy.fit(log, logged_slates=good.assign(action_propensity=bad), show_progress=False)
    with pytest.raises(TypeError, match="numbers"):
        policy.fit(log, logged_slates=good.assign(reward="yes"), show_progress=False)
    with pytest.raises(ValueError, match="slate_size"):
        TopKReinforceRecommender.from_recommender(model, slate_size=4).fit(
            log, logged_slates=good, show_progress=False
        )
    with pytest.raises(ValueError, match="sizes|positions"):
        policy.fit(log, logged_slates=good.iloc[:-1], show_progress=False)
    with pytest.raises(ValueError, match="logged slates"):
        policy.fit(log, show_progress=False)
    with pytest.raises(ValueError, match="gamma"):
        TopKReinforceConfig(gamma=2.0)
    with pytest.raises(ValueError, match="weight_cap"):
        TopKReinforceConfig(weight_cap=0)
    with pytest.raises(TypeError, match="CausalSequentialRecommender"):
        TopKReinforceRecommender.from_recommender(object())
