"""The classic gradient families ride the core training engine: `fit()` and `hf-recsys train` use the config's
optimizer (BPR's in-place SGD included) and give the same model for the same config and seed."""

from __future__ import annotations

import pytest
import torch
import yaml
from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import generate_interactions, load_interactions

pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # Accelerate state reset after each test (conftest)


@pytest.mark.parametrize(
    "model_type, model_config",
    [
        ("bprmf", {"factors": 8, "epochs": 3, "batch_size": 64, "learning_rate": 0.05}),  # optimizer: sgd (hook)
        ("biased_mf", {"factors": 4, "epochs": 2, "batch_size": 64}),  # sgd (hook)
        ("neumf", {"factors": 4, "mlp_layers": [8, 4], "epochs": 2, "batch_size": 32}),  # adam (autograd)
    ],
)
def test_fit_and_the_train_command_give_the_same_model(tmp_path, model_type, model_config):
    from hf_recsys.cli import main

    log, _ = generate_interactions(num_users=50, num_items=30, num_interactions=600, seed=4)
    data = tmp_path / "train.csv"
    log.to_pandas().to_csv(data, index=False)
    seed = 3
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model_type": model_type,
                "model_config": model_config,
                "train_file": str(data),
                "split": "none",
                "output_dir": str(tmp_path / "out"),
                "seed": seed,
                "eval_strategy": "no",
                "save_strategy": "no",
                "do_test": False,
                "disable_tqdm": True,
            }
        )
    )
    assert main(["train", str(config)]) == 0
    trained = AutoModelForRecommendation.from_pretrained(tmp_path / "out")

    torch.manual_seed(seed)  # as `hf-recsys train` seeds the new model
    fitted = AutoModelForRecommendation.for_model(model_type, **model_config, seed=seed)
    fitted.fit(load_interactions(str(data)), show_progress=False)
    assert trained.config.optimizer == fitted.config.optimizer == fitted.config_class().optimizer
    ours, theirs = fitted.state_dict(), trained.state_dict()
    assert ours.keys() == theirs.keys()
    changed = False
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0, msg=name)
    fresh = AutoModelForRecommendation.for_model(model_type, **model_config, num_users=50, num_items=30)
    for name, value in fresh.state_dict().items():
        changed |= value.shape == ours[name].shape and not torch.equal(value, ours[name])
    assert changed, "training moved the weights"


def test_bpr_sgd_hook_refuses_several_processes_or_accumulation(tmp_path):
    from hf_recsys.data import build_vocabs, encode_interactions
    from hf_recsys.training import RecTrainer, RecTrainingArguments

    log, _ = generate_interactions(num_users=20, num_items=10, num_interactions=100, seed=0)
    model = AutoModelForRecommendation.for_model("bprmf", factors=4)
    model.set_vocabs(*build_vocabs(log))
    train = encode_interactions(log, model.user_vocab, model.item_vocab)
    args = RecTrainingArguments(output_dir=str(tmp_path), gradient_accumulation_steps=2, eval_strategy="no")
    with pytest.raises(ValueError, match="optimizer='sgd'.*adam"):
        RecTrainer(model, args, train)
