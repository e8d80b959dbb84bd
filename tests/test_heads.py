import numpy as np
import pytest
import torch

from hf_recsys.heads import ClickHead, RatingHead, RetrievalHead
from hf_recsys.modeling_utils import RecommenderOutput


def _np_log_softmax(x):
    x = x - x.max(1, keepdims=True)
    return x - np.log(np.exp(x).sum(1, keepdims=True))


def _data(b=5, n=7, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randn(n, d, generator=g), torch.randint(0, n, (b,), generator=g)


@pytest.mark.parametrize("similarity", ["dot", "cosine"])
def test_retrieval_softmax_loss_matches_numpy(similarity):
    q, items, labels = _data()
    out = RetrievalHead(similarity=similarity, temperature=0.5)(q, items, labels=labels)
    assert isinstance(out, RecommenderOutput) and out.scores.shape == (5, 7) and out.loss.shape == ()
    qn, inn = q.numpy(), items.numpy()
    if similarity == "cosine":
        qn = qn / np.linalg.norm(qn, axis=1, keepdims=True)
        inn = inn / np.linalg.norm(inn, axis=1, keepdims=True)
    logits = qn @ inn.T / 0.5
    np.testing.assert_allclose(out.scores.numpy(), logits, rtol=1e-5, atol=1e-5)
    expected = -_np_log_softmax(logits)[np.arange(5), labels.numpy()].mean()
    np.testing.assert_allclose(out.loss.item(), expected, rtol=1e-5, atol=1e-5)


def test_logq_correction_and_mask_match_numpy():
    q, items, labels = _data()
    log_q = torch.log(torch.linspace(0.05, 0.3, 7))
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[:, 0] = True  # item 0 is never a negative
    out = RetrievalHead()(q, items, labels=labels, log_q=log_q, mask=mask)
    logits = q.numpy() @ items.numpy().T - log_q.numpy()[None]
    m = mask.numpy().copy()
    m[np.arange(5), labels.numpy()] = False
    logits[m] = -1e30
    expected = -_np_log_softmax(logits)[np.arange(5), labels.numpy()].mean()
    np.testing.assert_allclose(out.loss.item(), expected, rtol=1e-5, atol=1e-5)
    # the reported scores carry no correction
    np.testing.assert_allclose(out.scores.numpy(), q.numpy() @ items.numpy().T, rtol=1e-5, atol=1e-5)


def test_bpr_loss_matches_numpy():
    q, items, labels = _data()
    out = RetrievalHead(loss="bpr")(q, items, labels=labels)
    s = q.numpy() @ items.numpy().T
    pos = s[np.arange(5), labels.numpy()][:, None]
    terms = np.log1p(np.exp(-(pos - s)))
    valid = np.ones_like(s, dtype=bool)
    valid[np.arange(5), labels.numpy()] = False
    np.testing.assert_allclose(out.loss.item(), terms[valid].mean(), rtol=1e-5, atol=1e-5)


def test_no_labels_no_loss_and_bad_options():
    q, items, _ = _data()
    assert RetrievalHead()(q, items).loss is None
    with pytest.raises(ValueError, match="similarity"):
        RetrievalHead(similarity="l2")
    with pytest.raises(ValueError, match="temperature"):
        RetrievalHead(temperature=0)


def test_rating_head_mse_and_fit():
    torch.manual_seed(0)
    users, items = torch.randn(6, 3), torch.randn(6, 3)
    uid, iid = torch.arange(6), torch.arange(6)
    y = torch.tensor([1.0, 2, 3, 4, 5, 3])
    head = RatingHead(num_users=6, num_items=6, global_mean=3.0)
    out = head(users, items, uid, iid, labels=y)
    pred = (users * items).sum(1).numpy() + 3.0  # biases start at zero
    np.testing.assert_allclose(out.scores.detach().numpy(), pred, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.loss.item(), ((pred - y.numpy()) ** 2).mean(), rtol=1e-5, atol=1e-5)
    opt = torch.optim.Adam(head.parameters(), lr=0.1)
    for _ in range(200):
        opt.zero_grad()
        loss = head(users, items, uid, iid, labels=y).loss
        loss.backward()
        opt.step()
    assert loss.item() < 1e-3  # the biases alone can fit six ratings exactly


def test_click_head_bce_and_learns_separable_clicks():
    torch.manual_seed(0)
    head = ClickHead(hidden_size=4, mlp_size=0)
    u, i = torch.randn(64, 4), torch.randn(64, 4)
    y = ((u * i).sum(1) > 0).float()
    out = head(u, i, labels=y)
    p = torch.sigmoid(out.scores).detach().numpy()
    expected = -(y.numpy() * np.log(p) + (1 - y.numpy()) * np.log(1 - p)).mean()
    np.testing.assert_allclose(out.loss.item(), expected, rtol=1e-4)
    opt = torch.optim.Adam(head.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        loss = head(u, i, labels=y).loss
        loss.backward()
        opt.step()
    acc = ((head(u, i).scores > 0).float() == y).float().mean().item()
    assert acc > 0.9


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_chunked_cross_entropy_equals_the_full_softmax_loss_and_gradients(temperature):
    from hf_recsys.heads import chunked_cross_entropy

    gen = torch.Generator().manual_seed(0)
    states = torch.randn(37, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    items = torch.randn(23, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.randint(23, (37,), generator=gen)
    full = torch.nn.functional.cross_entropy(states @ items.T / temperature, target)
    grads = torch.autograd.grad(full, (states, items))
    chunked = chunked_cross_entropy(states, items, target, temperature, chunk_size=5)  # 8 chunks, the last short
    assert torch.allclose(chunked, full.float().to(chunked.dtype), atol=1e-6)
    ours = torch.autograd.grad(chunked, (states, items))
    for g, h in zip(grads, ours):
        assert torch.allclose(g, h, atol=1e-6)
    assert torch.autograd.gradcheck(
        lambda s, w: chunked_cross_entropy(s, w, target, temperature, chunk_size=7), (states, items)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):  # bf16 products, fp32 softmax: close to the fp32 loss
        low = chunked_cross_entropy(states.float(), items.float(), target, temperature, chunk_size=5)
    assert low.dtype == torch.float32 and abs(float(low) - float(full)) < 0.05 * float(full)
