"""The training engine: fit() runs the trainer in-process with the config's training options; `hf-recsys train` with
the same config and seed gives the same model; resize hooks keep known rows."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import generate_interactions
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.testing_utils import tiny_log
from hf_recsys.training import TrainingOptions, resize_rows
from hf_recsys.training.engine import fit_model

TINY = {"max_sequence_length": 8, "hidden_size": 16, "num_layers": 1, "num_heads": 2, "dropout": 0.1}


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # Accelerate state reset after each test (conftest)


def _fit(seed=0, **kw):
    torch.manual_seed(seed)
    model = CausalSequentialRecommender(CausalSequentialConfig(**TINY, batch_size=8, learning_rate=3e-3, seed=seed))
    return model.fit(tiny_log(), show_progress=False, **kw)


def test_fit_is_reproducible_learns_and_records_its_options():
    a, b = _fit(epochs=10), _fit(epochs=10)
    h = a.last_training_history
    assert h.step_losses == b.last_training_history.step_losses
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    assert h.epoch_losses[-1] < 0.9 * h.epoch_losses[0]
    assert len(h.epoch_losses) == 10 and not a.training
    assert a.config.epochs == 10 and a.config.learning_rate == 3e-3  # the options used travel with the model


def test_max_steps_and_early_stopping():
    assert len(_fit(epochs=5, max_steps=3).last_training_history.step_losses) == 3
    seen = []

    def stop(epoch, loss):
        seen.append(epoch)
        return epoch == 1

    h = _fit(epochs=10, on_epoch_end=stop).last_training_history
    assert seen == [0, 1] and h.stopped_early and len(h.epoch_losses) == 2


def test_bad_options_and_nothing_trainable_are_clear_errors():
    with pytest.raises(ValueError, match="batch_size"):
        TrainingOptions(batch_size=0)
    with pytest.raises(ValueError, match="optimizer"):
        CausalSequentialConfig(**TINY, optimizer="lbfgs")
    with pytest.raises(ValueError, match="learning_rate"):
        _fit(learning_rate=-1.0)
    from hf_recsys.data import build_vocabs, encode_interactions

    model = CausalSequentialRecommender(CausalSequentialConfig(**TINY))
    model.set_vocabs(*build_vocabs(tiny_log()))
    model.resize_tables(model.config.num_users, model.config.num_items)
    model.requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        fit_model(model, encode_interactions(tiny_log(), model.user_vocab, model.item_vocab), show_progress=False)


def test_learning_rate_schedule_is_a_config_training_option():
    """lr_scheduler_type travels with the config: fit() decays the learning rate to 0 by the last step under
    "cosine", the default keeps it constant, a run argument overrides it, and a bad name is refused."""
    from hf_recsys.data import build_vocabs, encode_interactions
    from hf_recsys.training import RecTrainer, RecTrainingArguments

    seen = {}

    def trainer_lrs(model, **args):
        model.set_vocabs(*build_vocabs(tiny_log()))
        train = encode_interactions(tiny_log(), model.user_vocab, model.item_vocab)
        run = RecTrainingArguments(output_dir=str(seen["tmp"]), max_steps=4, save_strategy="no", **args)
        trainer = RecTrainer(model, run, train)
        trainer.train()
        return trainer.options.lr_scheduler_type, trainer.scheduler.get_last_lr()[0]

    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        seen["tmp"] = tmp
        cosine = CausalSequentialRecommender(CausalSequentialConfig(**TINY, lr_scheduler_type="cosine"))
        assert trainer_lrs(cosine) == ("cosine", 0.0)
        assert cosine.config.lr_scheduler_type == "cosine"
        plain = CausalSequentialRecommender(CausalSequentialConfig(**TINY, learning_rate=2e-3))
        assert trainer_lrs(plain) == ("constant", 2e-3)
        overridden = CausalSequentialRecommender(CausalSequentialConfig(**TINY, lr_scheduler_type="cosine"))
        assert trainer_lrs(overridden, lr_scheduler_type="constant")[0] == "constant"
    fitted = _fit(epochs=2, lr_scheduler_type="linear")
    assert fitted.config.lr_scheduler_type == "linear"
    with pytest.raises(ValueError, match="lr_scheduler_type must be one of"):
        CausalSequentialConfig(**TINY, lr_scheduler_type="exponential")


def test_resize_rows_keeps_known_rows_and_can_start_new_ones_from_their_mean():
    old = torch.arange(6.0).reshape(3, 2)
    grown = resize_rows(old, 5, 2, torch.nn.init.zeros_)
    assert torch.equal(grown[:3], old) and torch.equal(grown[3:], torch.zeros(2, 2))
    mean = resize_rows(old, 4, 2, torch.nn.init.zeros_, mean_resizing=True)
    assert torch.equal(mean[3], old.mean(0))
    assert torch.equal(resize_rows(old, 2, 2, torch.nn.init.zeros_), old[:2])
    assert resize_rows(old, 3, 2, torch.nn.init.zeros_) is old


def test_sequential_resize_hook_keeps_item_embeddings_and_the_mask_token():
    model = CausalSequentialRecommender(CausalSequentialConfig(**TINY, num_users=2, num_items=4))
    before = model.item_embeddings.weight.detach().clone()
    model.resize_tables(3, 6, mean_resizing=True)
    after = model.item_embeddings.weight.detach()
    assert after.shape == (8, 16) and len(model.user_history) == 3
    assert torch.equal(after[:5], before[:5]) and torch.equal(after[-1], before[-1])  # pad, items 1-4, mask
    assert torch.allclose(after[5], before[1:5].mean(0)) and torch.allclose(after[6], before[1:5].mean(0))


@pytest.mark.parametrize("seed_in", ["run arguments", "model config"])
def test_fit_and_one_process_train_command_give_the_same_model(tmp_path, seed_in):
    """The same config and seed: `model.fit(data)` in-process and `hf-recsys train` (one process) run one engine;
    without a seed among the run's arguments, `hf-recsys train` takes the config's, as `fit()` does."""
    log, _ = generate_interactions(num_users=40, num_items=25, num_interactions=400, seed=2)
    data = tmp_path / "train.csv"
    log.to_pandas().to_csv(data, index=False)
    model_config = {**TINY, "epochs": 2, "batch_size": 16, "learning_rate": 0.01, "optimizer": "adam"}
    seed = 5
    run = {"seed": seed} if seed_in == "run arguments" else {}
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model_type": "causal_sequential", "model_config": {**model_config, **({} if run else {"seed": seed})},
        "train_file": str(data), "split": "none", "output_dir": str(tmp_path / "out"), "eval_strategy": "no",
        "save_strategy": "no", "do_test": False, "disable_tqdm": True, **run,
    }))
    proc = subprocess.run([sys.executable, "-m", "hf_recsys.cli", "train", str(config)], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    trained = AutoModelForRecommendation.from_pretrained(tmp_path / "out")
    assert trained.config.optimizer == "adam" and trained.config.epochs == 2

    from hf_recsys.data import load_interactions

    torch.manual_seed(seed)  # as `hf-recsys train` seeds the new model's weights
    fitted = AutoModelForRecommendation.for_model("causal_sequential", **model_config, seed=seed)
    fitted.fit(load_interactions(str(data)), show_progress=False)
    assert fitted.user_vocab.decode(np.arange(3)).tolist() == trained.user_vocab.decode(np.arange(3)).tolist()
    ours, theirs = fitted.state_dict(), trained.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0, msg=name)


@pytest.fixture
def tiny_text_encoder(tmp_path):
    """A tiny BERT-style text encoder (random weights, word-level tokenizer), as all-MiniLM-L6-v2 is laid out."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder = tmp_path / "encoder"
    words = "film comedy drama action Genres :".split() + [str(i) for i in range(40)] + list(".,")
    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="[PAD]", unk_token="[UNK]").save_pretrained(folder)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=24, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)  # fmt: skip
    BertModel(cfg).save_pretrained(folder)
    return str(folder)


def test_train_command_embeds_item_texts_as_fit_takes_them(tmp_path, tiny_text_encoder, monkeypatch, capsys):
    """`item_text_model` + `item_text_file` in a train config: the items' texts are embedded by the encoder (its
    width becomes item_text_dim) and reach the model as `fit(item_text_embeddings=...)` gives them: the same
    model; bad combinations are clear errors."""
    import pandas as pd

    from hf_recsys.cli import main
    from hf_recsys.data import load_interactions, load_items
    from hf_recsys.models.llm import encode_item_texts

    monkeypatch.setenv("HF_RECSYS_CACHE", str(tmp_path / "cache"))
    log, _ = generate_interactions(num_users=30, num_items=20, num_interactions=300, seed=3)
    data, item_file = tmp_path / "train.csv", tmp_path / "items.csv"
    log.to_pandas().to_csv(data, index=False)
    ids = sorted(set(log["item_id"]))
    genres = ["Comedy", "Drama", "Action"]
    pd.DataFrame({"item_id": ids, "title": [f"film {i}" for i in range(len(ids))],
                  "genres": [genres[i % 3] for i in range(len(ids))]}).to_csv(item_file, index=False)  # fmt: skip
    model_config = {**TINY, "epochs": 1, "batch_size": 16, "optimizer": "adam", "text_fusion": "init", "seed": 4}
    run = {"model_type": "causal_sequential", "model_config": model_config, "train_file": str(data),
           "split": "none", "output_dir": str(tmp_path / "out"), "eval_strategy": "no", "save_strategy": "no",
           "do_test": False, "disable_tqdm": True, "item_text_model": tiny_text_encoder,
           "item_text_file": str(item_file)}  # fmt: skip
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(run))
    assert main(["train", str(config)]) == 0
    trained = AutoModelForRecommendation.from_pretrained(tmp_path / "out")
    assert trained.config.item_text_dim == 24 and trained.config.text_fusion == "init"

    items = load_items(str(item_file))
    feats = encode_item_texts(list(items["text"]), tiny_text_encoder, show_progress=False)
    row = trained.item_vocab.encode([items["item_id"][0]])[0]
    torch.testing.assert_close(trained.item_text_features[row], torch.from_numpy(feats[0]))
    torch.manual_seed(4)  # as `hf-recsys train` seeds the new model's weights
    fitted = AutoModelForRecommendation.for_model("causal_sequential", **model_config, item_text_dim=24)
    fitted.fit(load_interactions(str(data)), item_text_embeddings=(list(items["item_id"]), feats), show_progress=False)
    ours, theirs = fitted.state_dict(), trained.state_dict()
    assert ours.keys() == theirs.keys()
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=0, atol=0, msg=name)

    for change, message in (
        ({"item_text_file": None}, "no item texts"),
        ({"model_config": {**model_config, "text_fusion": "none"}}, "text_fusion"),
        ({"model_config": {**model_config, "item_text_dim": 8}}, "24 dimensions"),
        ({"model_type": "bprmf", "model_config": {"factors": 4}}, "does not read item texts"),
        ({"item_text_model": None}, "item_text_file needs item_text_model"),
        ({"item_text_model": None, "item_text_file": None}, "needs item texts"),
    ):
        config.write_text(yaml.safe_dump({**run, **change, "overwrite_output_dir": True}))
        capsys.readouterr()
        assert main(["train", str(config)]) == 2, change
        assert message in capsys.readouterr().err, change
