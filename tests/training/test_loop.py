import pytest
import torch
from torch import nn

from hf_recsys.modeling_utils import RecommenderOutput
from hf_recsys.training import LoopArguments, minibatches, train_loop


class _Regression(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 1)
        self.drop = nn.Dropout(0.1)

    def forward(self, x, labels):
        return RecommenderOutput(loss=((self.drop(self.lin(x)).squeeze(-1) - labels) ** 2).mean())


def _run(seed=0, **kw):
    torch.manual_seed(123)
    model = _Regression()
    x = torch.randn(200, 3, generator=torch.Generator().manual_seed(1))
    y = x @ torch.tensor([1.0, -2.0, 0.5]) + 0.3

    def batches(epoch, gen):
        for idx in minibatches(len(x), 32, gen):
            yield {"x": x[idx], "labels": y[idx]}

    args = LoopArguments(epochs=kw.pop("epochs", 30), learning_rate=0.05, seed=seed, show_progress=False, **kw)
    return model, train_loop(model, batches, args, num_batches=lambda: 7)


def test_loss_decreases_and_is_reproducible():
    model, h1 = _run()
    _, h2 = _run()
    assert h1.step_losses == h2.step_losses
    assert h1.epoch_losses[-1] < 0.1 * h1.epoch_losses[0]
    assert not model.training


def test_max_steps_and_early_stopping():
    _, h = _run(max_steps=5)
    assert len(h.step_losses) == 5
    torch.manual_seed(0)
    model = _Regression()
    seen = []

    def stop(epoch, loss):
        seen.append(epoch)
        return epoch == 1

    h = train_loop(
        model,
        lambda e, g: iter([{"x": torch.ones(2, 3), "labels": torch.zeros(2)}]),
        LoopArguments(epochs=10, show_progress=False),
        on_epoch_end=stop,
    )
    assert seen == [0, 1] and h.stopped_early and len(h.epoch_losses) == 2


def test_nothing_trainable_is_a_clear_error():
    model = _Regression().requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        train_loop(model, lambda e, g: iter([]), LoopArguments(epochs=1, show_progress=False))
    with pytest.raises(ValueError, match="batch_size"):
        LoopArguments(batch_size=0)
