import pytest
import torch
from torch import nn

from hf_recsys.models.fast_dropout import FastDropout, keep_mask, use_fast_dropout


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5])
def test_keep_rate_and_unbiased_scale(p):
    torch.manual_seed(0)
    keep, scale = keep_mask(torch.Size([400, 1000]), p)
    assert keep.dtype == torch.bool and keep.shape == (400, 1000)
    rate = keep.float().mean().item()
    # 400k Bernoulli draws: the standard error of the rate is below 8e-4
    assert abs(rate - (1 - p)) < 4e-3
    exact_keep = 1 - round(p * 32768) / 32768
    assert scale == pytest.approx(1 / exact_keep)


def test_mask_bits_are_independent_across_the_four_slots_of_a_draw():
    # every 64-bit draw feeds 4 neighbouring elements: each slot must keep at the same rate, uncorrelated
    torch.manual_seed(1)
    keep, _ = keep_mask(torch.Size([200_000 * 4]), 0.5)
    slots = keep.view(-1, 4).float()
    assert torch.allclose(slots.mean(0), torch.full((4,), 0.5), atol=6e-3)
    corr = torch.corrcoef(slots.T)
    assert (corr - torch.eye(4)).abs().max() < 0.015


def test_forward_and_backward_use_the_same_mask():
    torch.manual_seed(0)
    drop = FastDropout(0.3)
    x = torch.randn(64, 50, requires_grad=True)
    y = drop(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] * (32768 / (32768 - round(0.3 * 32768))))
    y.sum().backward()
    assert torch.equal(x.grad != 0, kept)
    assert torch.allclose(x.grad[kept], y[kept] / x[kept])


def test_reproducible_under_the_torch_seed_and_identity_in_eval():
    drop = FastDropout(0.2)
    x = torch.randn(32, 16)
    torch.manual_seed(7)
    a = drop(x)
    torch.manual_seed(7)
    assert torch.equal(a, drop(x))
    drop.eval()
    assert torch.equal(drop(x), x)
    assert torch.equal(FastDropout(0.0)(x), x)
    assert torch.equal(FastDropout(1.0)(x), torch.zeros_like(x))  # nn.Dropout's behaviour at p=1
    drop.train()
    assert torch.isfinite(FastDropout(1 - 1e-6)(x)).all()  # rounds to a keep rate of 0: nn.Dropout's path
    assert torch.equal(FastDropout(1e-6)(x), x)  # rounds to a drop rate of 0


def test_bf16_input_keeps_its_dtype():
    x = torch.randn(8, 8, dtype=torch.bfloat16)
    assert FastDropout(0.1)(x).dtype == torch.bfloat16


def test_use_fast_dropout_replaces_plain_dropout_only():
    class Custom(nn.Dropout):
        pass

    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.1), nn.Sequential(nn.Dropout(0.25)), Custom(0.5))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_fast_dropout(model) == 2
    assert type(model[1]) is FastDropout and model[1].p == 0.1 and not model[1].training
    assert type(model[2][0]) is FastDropout and model[2][0].p == 0.25
    assert type(model[3]) is Custom
    assert model.state_dict().keys() == before.keys()


def test_sequential_backbones_use_fast_dropout():
    from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

    model = CausalSequentialRecommender(CausalSequentialConfig(max_sequence_length=8, hidden_size=16, dropout=0.1))
    drops = [m for m in model.backbone.modules() if isinstance(m, nn.Dropout)]
    assert drops and all(type(m) is FastDropout for m in drops)
