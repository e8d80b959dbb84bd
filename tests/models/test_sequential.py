import os
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from hf_recsys.models.sequential import (
    CausalSequentialConfig,
    CausalSequentialRecommender,
    MaskedSequentialConfig,
    MaskedSequentialRecommender,
)
from hf_recsys.models.sequential.modeling_sequential import gather_windows, sequences_from_interactions
from hf_recsys.testing_utils import RecommenderContractTests, tiny_log

pytestmark = pytest.mark.usefixtures("one_torch_thread")


TINY = {"max_sequence_length": 8, "hidden_size": 16, "num_heads": 2, "num_layers": 1}


class TestCausalSequentialContract(RecommenderContractTests):
    model_type = "causal_sequential"
    config_kwargs = TINY
    check_similar_items = True

    @classmethod
    def fit_model(cls, model, log):
        return model.fit(log, epochs=3, show_progress=False)


class TestMaskedSequentialContract(TestCausalSequentialContract):
    model_type = "masked_sequential"


def _ml_slice(path, num_users=40, min_item_count=5):
    df = pd.read_csv(os.path.join(path, "ratings.csv"))
    df = df[df.userId <= num_users]
    counts = df.movieId.value_counts()
    df = df[df.movieId.isin(counts[counts >= min_item_count].index)]
    return df.rename(columns={"userId": "user_id", "movieId": "item_id", "rating": "rating", "timestamp": "timestamp"})


def _fitted_tiny(cls=CausalSequentialRecommender, cfg_cls=CausalSequentialConfig, **kw):
    torch.manual_seed(0)
    return cls(cfg_cls(**(TINY | kw))).fit(tiny_log(), epochs=2, show_progress=False)


def test_gather_windows_left_pads_the_most_recent_items():
    items = np.array([5, 6, 7, 8, 9, 1, 2])  # user 0: 5 6 7 8 9, user 1: 1 2
    got = gather_windows(items, np.array([0, 5]), np.array([5, 7]), 3)
    np.testing.assert_array_equal(got, [[8, 9, 10], [0, 2, 3]])  # tokens are item index + 1


def test_sequences_are_time_ordered():
    log = pd.DataFrame({"user_id": ["a", "a", "a", "b"], "item_id": [3, 1, 2, 1], "timestamp": [30, 10, 20, 5]})
    model = CausalSequentialRecommender(CausalSequentialConfig(**TINY))
    model.fit(log, epochs=1, show_progress=False)
    indptr, items = sequences_from_interactions(
        __import__("hf_recsys").data.encode_interactions(log, model.user_vocab, model.item_vocab)
    )
    np.testing.assert_array_equal(model.item_vocab.decode(items[indptr[0] : indptr[1]]), [1, 2, 3])
    # the stored history of user "a" is its items in time order, left-padded
    np.testing.assert_array_equal(model.user_history[0].numpy()[-3:] - 1, model.item_vocab.encode([1, 2, 3]))


def test_causal_training_batch_predicts_the_next_item():
    model = CausalSequentialRecommender(CausalSequentialConfig(**(TINY | {"train_windows": "last"})))
    model.resize_tables(1, 10)
    items = np.array([4, 2, 7])
    batch = model._training_batch(items, np.array([0]), np.array([3]), torch.Generator())
    np.testing.assert_array_equal(batch["input_ids"][0, -3:], [0, 5, 3])  # pad, 4, 2 as tokens
    np.testing.assert_array_equal(batch["labels"][0, -3:], [-100, 2, 7])  # next items as indices
    assert (batch["labels"][0, :-2] == -100).all()


def test_masked_training_batch_masks_only_real_items():
    model = MaskedSequentialRecommender(MaskedSequentialConfig(**(TINY | {"mask_prob": 0.5})))
    model.resize_tables(1, 10)
    items = np.arange(20) % 10
    starts, ends = np.zeros(50, dtype=np.int64), np.full(50, 3)
    batch = model._training_batch(items, starts, ends, torch.Generator().manual_seed(0))
    masked = batch["input_ids"] == 11
    assert masked.any(1).all(), "every row predicts at least one item"
    assert (batch["labels"][masked] >= 0).all() and (batch["labels"][~masked] == -100).all()
    assert not masked[:, :-3].any(), "padding is never masked"


@pytest.mark.parametrize(
    "cls, cfg_cls",
    [(CausalSequentialRecommender, CausalSequentialConfig), (MaskedSequentialRecommender, MaskedSequentialConfig)],
)
@pytest.mark.parametrize("loss", ["full", "sampled", "gbce"])
def test_forward_shapes_and_loss(cls, cfg_cls, loss):
    model = cls(cfg_cls(num_items=30, **(TINY | {"loss": loss, "num_negatives": 5})))
    ids = torch.randint(1, 31, (4, 8))
    out = model(input_ids=ids)
    assert out.scores.shape == (4, 30) and out.user_embeddings.shape == (4, 16) and out.loss is None
    labels = torch.full((4, 8), -100)
    labels[:, -1] = torch.tensor([0, 5, 9, 29])
    out = model(input_ids=ids, labels=labels)
    assert out.loss.shape == () and torch.isfinite(out.loss)
    out.loss.backward()
    assert model.item_embeddings.weight.grad is not None


def test_history_order_matters_and_matches_known_user():
    model = _fitted_tiny()
    log = tiny_log()
    hist = log[log.user_id == "u3"].sort_values("timestamp").item_id.tolist()
    known = model.score(["u3"], hist[:3])
    from_hist = model.score(["x"], hist[:3], histories={"x": hist})
    np.testing.assert_allclose(known, from_hist, rtol=1e-5)
    reversed_scores = model.score(["x"], hist[:3], histories={"x": hist[::-1]})
    assert not np.allclose(from_hist, reversed_scores), "a causal model must read the history in order"


def test_scores_deterministic_in_eval_even_when_training_mode():
    model = _fitted_tiny(dropout=0.5)
    model.train()
    a = model.score(["u1"], [7, 17, 27])
    b = model.score(["u1"], [7, 17, 27])
    np.testing.assert_array_equal(a, b)
    assert model.training, "scoring restores the training mode"


@pytest.mark.slow
def test_loss_decreases_on_real_movielens_slice(ml_latest_small):
    log = _ml_slice(ml_latest_small)
    # BERT4Rec-style training sees few labels per epoch and learns more slowly: it gets more epochs and a looser bar
    common = {"max_sequence_length": 30, "hidden_size": 32, "dropout": 0.1}
    for cls, cfg, epochs, ratio in [
        (CausalSequentialRecommender, CausalSequentialConfig(**common), 15, 0.85),
        (MaskedSequentialRecommender, MaskedSequentialConfig(mask_prob=0.5, **common), 30, 0.95),
    ]:
        torch.manual_seed(0)
        model = cls(cfg).fit(log, epochs=epochs, batch_size=8, learning_rate=3e-3, show_progress=False)
        losses = model.last_training_history.epoch_losses
        assert np.mean(losses[-3:]) < ratio * losses[0], (cls.__name__, losses)


def _tiny_pretrained_gpt2(folder):
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=8, vocab_size=1, bos_token_id=None, eos_token_id=None)
    GPT2Model(cfg).save_pretrained(folder)
    return folder


def test_lora_trains_only_adapter_and_head_and_roundtrips_without_backbone():
    with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as out:
        _tiny_pretrained_gpt2(base)
        torch.manual_seed(0)
        model = CausalSequentialRecommender(
            CausalSequentialConfig(max_sequence_length=8, backbone_name_or_path=base, use_lora=True, lora_r=4)
        )
        assert model.config.base_model == base
        model.fit(tiny_log(), epochs=2, show_progress=False)
        trainable = [n for n, p in model.named_parameters() if p.requires_grad]
        assert trainable and all("lora_" in n or not n.startswith("backbone.") for n in trainable)
        assert any("lora_" in n for n in trainable) and "item_embeddings.weight" in trainable
        frozen_backbone = {
            n: p.clone() for n, p in model.named_parameters() if n.startswith("backbone.") and "lora_" not in n
        }
        assert all(torch.equal(p, dict(model.named_parameters())[n]) for n, p in frozen_backbone.items())

        users = ["u1", "u2", "u5"]
        expected = model.recommend(users, k=5)
        model.save_pretrained(out)
        saved = load_file(os.path.join(out, "model.safetensors"))
        assert not [k for k in saved if k.startswith("backbone.") and "lora_" not in k], "frozen backbone was saved"
        assert not any("lora_" in k for k in saved) and os.path.isfile(os.path.join(out, "adapter_model.safetensors"))
        loaded = CausalSequentialRecommender.from_pretrained(out)
        got = loaded.recommend(users, k=5)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])

        merged = loaded.merge_adapter()
        assert not any("lora_" in n for n, _ in merged.named_parameters())
        np.testing.assert_allclose(merged.recommend(users, k=5)[1], expected[1], rtol=1e-4, atol=1e-5)


def test_text_fusion_add_and_init():
    log = tiny_log()
    items = sorted(log.item_id.unique())
    text = np.random.default_rng(0).normal(size=(len(items), 12)).astype(np.float32)
    model = _fitted_tiny(item_text_dim=12, text_fusion="add")
    model.set_item_text_embeddings(items[::-1], text[::-1])  # aligned by id, not by position
    np.testing.assert_allclose(model.item_text_features.numpy()[model.item_vocab.encode(items)], text)
    table = model.item_table()
    proj = model.text_projection(torch.as_tensor(text))
    idx = torch.as_tensor(model.item_vocab.encode(items)) + 1
    torch.testing.assert_close(table[idx], model.item_embeddings.weight[idx] + proj)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        loaded = CausalSequentialRecommender.from_pretrained(d)
        assert not loaded.item_text_features.requires_grad
        np.testing.assert_array_equal(loaded.score(["u1"], items), model.score(["u1"], items))

    init = CausalSequentialRecommender(CausalSequentialConfig(**TINY, item_text_dim=12, text_fusion="init"))
    init.fit(log, epochs=1, show_progress=False, item_text_embeddings=(items, text))
    assert init.item_text_features.abs().sum() > 0


def test_config_errors_are_named():
    with pytest.raises(ValueError, match="text_fusion"):
        CausalSequentialConfig(text_fusion="add")
    with pytest.raises(ValueError, match="loss"):
        CausalSequentialConfig(loss="bce")
    with pytest.raises(ValueError, match="not both"):
        CausalSequentialConfig(backbone_name_or_path="x", backbone_config={"model_type": "gpt2"})
    with pytest.raises(ValueError, match="mask_prob"):
        MaskedSequentialConfig(mask_prob=1.5)


def test_update_histories_appends_new_items_without_training():
    model = _fitted_tiny()
    weights = {k: v.clone() for k, v in model.state_dict().items() if k != "user_history"}
    log = tiny_log()
    new = pd.DataFrame({"user_id": ["u1"], "item_id": [247], "rating": [5.0], "timestamp": [2_000_000_000]})
    model.update_histories(pd.concat([log, new]))
    assert model.user_history[model.user_vocab.encode(["u1"])[0], -1].item() == model.item_vocab.encode([247])[0] + 1
    assert model.seen_items[model.user_vocab.encode(["u1"])[0]].toarray()[0, model.item_vocab.encode([247])[0]] == 1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())


def test_bf16_and_fp32_training_reach_the_same_quality():
    """precision="bf16" (autocast: bf16 products, fp32 softmax and weights) learns as well as fp32 on a small log."""
    from hf_recsys.data import generate_interactions, leave_last_out
    from hf_recsys.evaluation import evaluate_model

    log, _ = generate_interactions(num_users=300, num_items=60, num_interactions=6_000, seed=3)
    splits = leave_last_out(log)
    cfg = dict(TINY, max_sequence_length=20, hidden_size=32, dropout=0.1, epochs=12, batch_size=32, learning_rate=5e-3)
    ndcg = {}
    for precision in ("fp32", "bf16"):
        torch.manual_seed(0)
        model = CausalSequentialRecommender(CausalSequentialConfig(**cfg, precision=precision))
        model.fit(splits["train"], show_progress=False)
        res = evaluate_model(model, splits["train"], splits["test"], ks=10, metrics=["ndcg"], show_progress=False)
        ndcg[precision] = res.summary["ndcg@10"]
    torch.manual_seed(0)
    untrained = CausalSequentialRecommender(CausalSequentialConfig(**(cfg | {"epochs": 1}))).fit(
        splits["train"], max_steps=1, show_progress=False
    )
    floor = evaluate_model(untrained, splits["train"], splits["test"], ks=10, metrics=["ndcg"], show_progress=False)
    assert ndcg["fp32"] > 1.25 * floor.summary["ndcg@10"], (ndcg, floor.summary)
    assert abs(ndcg["bf16"] - ndcg["fp32"]) < 0.15 * ndcg["fp32"], ndcg


@pytest.mark.parametrize(
    "cls, cfg_cls",
    [(CausalSequentialRecommender, CausalSequentialConfig), (MaskedSequentialRecommender, MaskedSequentialConfig)],
)
def test_positions_counted_from_the_first_item_ignore_the_padding(cls, cfg_cls):
    """positions="items": the state of a history does not depend on how much left padding precedes it (SASRec's
    right-padded positions); positions="window" (the default, as saved models were trained) does depend on it."""
    ids = torch.tensor([[0, 0, 0, 0, 3, 7, 5, 9]])
    states = {}
    for positions in ("window", "items", "from_end"):
        torch.manual_seed(0)
        model = cls(cfg_cls(num_items=30, **TINY, dropout=0.0, positions=positions)).eval()
        with torch.no_grad():
            states[positions] = (model.encode(ids)[0, -1], model.encode(ids[:, 3:])[0, -1])
    torch.testing.assert_close(*states["items"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(*states["from_end"], rtol=1e-5, atol=1e-5)
    assert not torch.allclose(*states["window"], atol=1e-3)


@pytest.mark.parametrize(
    "cls, cfg_cls",
    [(CausalSequentialRecommender, CausalSequentialConfig), (MaskedSequentialRecommender, MaskedSequentialConfig)],
)
def test_positions_from_end_relabel_the_left_padded_window(cls, cfg_cls):
    """positions="from_end" gives the last token position 0 and counts back: in a full-length left-padded window,
    ``L - 1 - `` the window's position, so a model whose position table is the window model's, reversed, computes
    the same states (BERT4Rec's left-padded positions, independent of how much padding is cut)."""
    length = TINY["max_sequence_length"]
    ids = torch.tensor([[0, 0, 0, 0, 3, 7, 5, 9], [4, 8, 1, 2, 6, 3, 7, 5]])
    seen = {}
    torch.manual_seed(0)
    window = cls(cfg_cls(num_items=30, **TINY, dropout=0.0)).eval()
    torch.manual_seed(0)
    from_end = cls(cfg_cls(num_items=30, **TINY, dropout=0.0, positions="from_end")).eval()
    table = next(m for n, m in from_end.backbone.named_modules() if n.endswith(("wpe", "position_embeddings")))
    with torch.no_grad():
        table.weight[:length] = table.weight[:length].flip(0).clone()
    table.register_forward_pre_hook(lambda m, a: seen.update(pos=a[0]))
    with torch.no_grad():
        expected, got = window.encode(ids), from_end.encode(ids)
    assert seen["pos"][:, -1].tolist() == [0, 0] and seen["pos"][1].tolist() == list(range(length - 1, -1, -1))
    real = ids != 0
    torch.testing.assert_close(got[real], expected[real], rtol=1e-5, atol=1e-5)


def test_scaled_item_embeddings_reach_the_backbone_and_not_the_output():
    torch.manual_seed(0)
    model = CausalSequentialRecommender(CausalSequentialConfig(num_items=30, **TINY, scale_item_embeddings=True))
    seen = {}
    model.backbone.register_forward_pre_hook(lambda m, a, kw: seen.update(x=kw["inputs_embeds"]), with_kwargs=True)
    model.eval()
    ids = torch.tensor([[0, 0, 3, 7, 5, 9, 1, 2]])
    with torch.no_grad():
        out = model(input_ids=ids)
    torch.testing.assert_close(seen["x"], model.item_embeddings.weight[ids] * 16**0.5)
    torch.testing.assert_close(out.scores, out.user_embeddings @ model.item_embeddings.weight[1:-1].T)


def test_models_saved_before_the_sasrec_options_load_with_the_old_behaviour(tmp_path):
    model = _fitted_tiny()
    model.save_pretrained(tmp_path)
    cfg_path = tmp_path / "config.json"
    import json

    cfg = json.loads(cfg_path.read_text())
    assert cfg["scale_item_embeddings"] is False and cfg["positions"] == "window"
    del cfg["scale_item_embeddings"], cfg["positions"]
    cfg_path.write_text(json.dumps(cfg))
    loaded = CausalSequentialRecommender.from_pretrained(tmp_path)
    assert loaded.config.scale_item_embeddings is False and loaded.config.positions == "window"
    np.testing.assert_allclose(loaded.score(["u1"], [7, 17, 27]), model.score(["u1"], [7, 17, 27]), rtol=1e-5)


def test_normalized_residual_blocks_compute_sasrec_order_and_survive_a_save(tmp_path):
    """block_residual="normalized": each GPT-2 block computes x = LN1(x) + attn(LN1(x)), x = LN2(x) + mlp(LN2(x))
    (checked against the block's own sub-modules), differs from GPT-2's order, and is restored by from_pretrained."""
    torch.manual_seed(0)
    model = CausalSequentialRecommender(
        CausalSequentialConfig(num_items=30, **TINY, dropout=0.0, block_residual="normalized")
    ).eval()
    block = model.backbone.h[0]
    x = torch.randn(2, 8, 16)
    with torch.no_grad():
        q = block.ln_1(x)
        h = q + block.attn(q)[0]
        expected = block.ln_2(h) + block.mlp(block.ln_2(h))
        torch.testing.assert_close(block(x), expected)
        stream = type(block).forward(block, x)  # GPT-2's own order on the same weights
        assert not torch.allclose(stream, expected, atol=1e-3)
    model.fit(tiny_log(), epochs=1, show_progress=False)
    model.save_pretrained(tmp_path)
    loaded = CausalSequentialRecommender.from_pretrained(tmp_path)
    assert loaded.config.block_residual == "normalized"
    np.testing.assert_allclose(loaded.score(["u1"], [7, 17, 27]), model.score(["u1"], [7, 17, 27]), rtol=1e-5)


def test_sasrec_blocks_read_keys_and_values_from_the_stream(tmp_path):
    """block_residual="sasrec": SASRec's MHA(Q=LN1(x), K=x, V=x), then x = LN2(h) + mlp(LN2(h)), checked against an
    attention written out from the block's own c_attn / c_proj weights on a padded batch through the whole model;
    it differs from "normalized" (keys from LN1(x)), trains, and is restored by from_pretrained."""
    torch.manual_seed(0)
    config = CausalSequentialConfig(num_items=30, **TINY, dropout=0.0, block_residual="sasrec")
    model = CausalSequentialRecommender(config).eval()
    block, width, heads = model.backbone.h[0], TINY["hidden_size"], TINY["num_heads"]
    x = torch.randn(2, 8, width)
    weight, bias = block.attn.c_attn.weight, block.attn.c_attn.bias

    def expected(x, keep):  # keep: (b, L) bool, the positions a query may attend to (and causal)
        q = block.ln_1(x)
        proj = lambda t, part: (t @ weight + bias)[..., part * width : (part + 1) * width]  # noqa: E731
        split = lambda t: t.view(*t.shape[:-1], heads, -1).transpose(1, 2)  # noqa: E731
        logits = split(proj(q, 0)) @ split(proj(x, 1)).transpose(-1, -2) / (width // heads) ** 0.5
        allowed = torch.tril(torch.ones(8, 8, dtype=torch.bool)) & keep[:, None, None, :]
        attn = logits.masked_fill(~allowed, -torch.inf).softmax(-1) @ split(proj(x, 2))
        h = q + block.attn.c_proj(attn.transpose(1, 2).reshape(x.shape))
        return block.ln_2(h) + block.mlp(block.ln_2(h))

    with torch.no_grad():
        torch.testing.assert_close(block(x), expected(x, torch.ones(2, 8, dtype=torch.bool)))
        normalized = CausalSequentialRecommender(
            CausalSequentialConfig(num_items=30, **TINY, dropout=0.0, block_residual="normalized")
        ).eval()
        normalized.load_state_dict(model.state_dict())
        assert not torch.allclose(normalized.backbone.h[0](x), block(x), atol=1e-3)
        # a left-padded batch through the model: the real positions match the written-out block
        ids = torch.tensor([[0, 0, 0, 3, 5, 7, 9, 11], [2, 4, 6, 8, 10, 12, 14, 16]])
        hidden = model.encode(ids)
        keep = ids != 0
        emb = F.embedding(ids, model.item_table(), padding_idx=0)
        pos = (keep.long().cumsum(1) - 1).clamp(min=0) if config.positions == "items" else torch.arange(8)
        h0 = emb * (width**0.5 if config.scale_item_embeddings else 1.0) + model.backbone.wpe(pos)
        want = model.backbone.ln_f(expected(h0, keep))
        torch.testing.assert_close(hidden[keep], want[keep], rtol=1e-4, atol=1e-5)
    model.fit(tiny_log(), epochs=1, show_progress=False)
    model.save_pretrained(tmp_path)
    loaded = CausalSequentialRecommender.from_pretrained(tmp_path)
    assert loaded.config.block_residual == "sasrec"
    np.testing.assert_allclose(loaded.score(["u1"], [7, 17, 27]), model.score(["u1"], [7, 17, 27]), rtol=1e-5)


def test_sasrec_blocks_apply_a_lora_adapter_on_c_attn():
    """The "sasrec" attention calls c_attn itself, so a LoRA adapter on it changes the output (not bypassed)."""
    torch.manual_seed(0)
    config = CausalSequentialConfig(num_items=30, **TINY, dropout=0.0, block_residual="sasrec", use_lora=True)
    model = CausalSequentialRecommender(config).eval()
    ids = torch.tensor([[0, 3, 5, 7, 9, 11, 13, 15]])
    with torch.no_grad():
        before = model.encode(ids)
        lora_b = [p for n, p in model.backbone.named_parameters() if "lora_B" in n and "c_attn" in n]
        assert lora_b, "the adapter should wrap c_attn"
        for p in lora_b:
            p.normal_()
        assert not torch.allclose(model.encode(ids), before, atol=1e-4)


def test_sasrec_option_errors_are_named():
    with pytest.raises(ValueError, match="positions"):
        CausalSequentialConfig(positions="right")
    with pytest.raises(ValueError, match="block_residual"):
        CausalSequentialConfig(block_residual="post")
    bert = MaskedSequentialConfig(**TINY).backbone_config
    with pytest.raises(ValueError, match="rewires GPT-2 blocks.*'bert'"):
        CausalSequentialRecommender(CausalSequentialConfig(**TINY, backbone_config=bert, block_residual="normalized"))
    with pytest.raises(ValueError, match="scale_item_embeddings"):
        CausalSequentialConfig(scale_item_embeddings="yes")


@pytest.mark.parametrize(
    "name",
    [
        "causal_sequential_ml1m.yaml",
        "causal_sequential_ml1m_h128.yaml",
        "causal_sequential_ml1m_h128_sasrec.yaml",
        "causal_sequential_ml1m_h128_sasrec_text.yaml",
        "masked_sequential_ml1m.yaml",
        "masked_sequential_ml1m_h128.yaml",
    ],
)
def test_ml1m_example_configs_build_a_model_that_trains(name):
    """The ML-1M configs of examples/train (run by benchmarks/sequential/ml1m.py) are valid: one step on a tiny log."""
    from pathlib import Path

    import yaml

    from hf_recsys import AutoModelForRecommendation

    cfg = yaml.safe_load((Path(__file__).parents[2] / "examples" / "train" / name).read_text())
    model_config = cfg["model_config"] | {"max_sequence_length": 12, "precision": "fp32"}
    texts = {}
    if model_config.get("text_fusion", "none") != "none":  # `hf-recsys train` sizes it to item_text_model's width
        model_config["item_text_dim"] = 8
        items = sorted(set(tiny_log()["item_id"]))
        texts["item_text_embeddings"] = (items, np.random.default_rng(0).normal(size=(len(items), 8)))
    model = AutoModelForRecommendation.for_model(cfg["model_type"], **model_config)
    model.fit(tiny_log(), max_steps=1, show_progress=False, **texts)
    assert model.last_training_history.step_losses and np.isfinite(model.last_training_history.step_losses[0])


def test_gbce_is_bce_at_t0_weights_the_positive_by_beta_and_skips_accidental_hits():
    from hf_recsys.models.sequential.modeling_sequential import gbce_loss

    g = torch.Generator().manual_seed(0)
    pos, neg = torch.randn(6, generator=g), torch.randn(6, 4, generator=g)
    none = torch.zeros(6, 4, dtype=torch.bool)
    bce = F.binary_cross_entropy_with_logits(torch.cat([pos[:, None], neg], 1), torch.eye(5)[0].expand(6, 5))
    torch.testing.assert_close(gbce_loss(pos, neg, none, num_items=101, t=0.0), bce)
    alpha = 4 / 100  # beta = alpha at t = 1: the positive's term scaled by it
    by_hand = (-alpha * F.logsigmoid(pos).sum() - F.logsigmoid(-neg).sum()) / 30
    torch.testing.assert_close(gbce_loss(pos, neg, none, num_items=101, t=1.0), by_hand)
    hits = none.clone()
    hits[0, 1] = True
    by_hand = (-F.logsigmoid(pos).sum() - F.logsigmoid(-neg).sum() + F.logsigmoid(-neg[0, 1])) / 30
    torch.testing.assert_close(gbce_loss(pos, neg, hits, num_items=101, t=0.0), by_hand)
    with pytest.raises(ValueError, match="gbce_t"):
        CausalSequentialConfig(loss="gbce", gbce_t=1.5)


@pytest.mark.parametrize("loss, negatives", [("gbce", 32), ("sampled", 48)])
def test_sampled_losses_learn_on_a_generated_log(loss, negatives):
    """gBCE and the sampled softmax with many negatives (here most of the 60 items) beat the untrained model."""
    from hf_recsys.data import generate_interactions, leave_last_out
    from hf_recsys.evaluation import evaluate_model

    log, _ = generate_interactions(num_users=300, num_items=60, num_interactions=6_000, seed=3)
    splits = leave_last_out(log)
    cfg = dict(TINY, max_sequence_length=20, hidden_size=32, dropout=0.1, batch_size=32, learning_rate=5e-3)
    cfg |= {"loss": loss, "num_negatives": negatives, "scale_item_embeddings": True, "positions": "items"}
    ndcg = {}
    for name, epochs in (("untrained", 0), ("trained", 10)):
        torch.manual_seed(0)
        model = CausalSequentialRecommender(CausalSequentialConfig(**cfg, epochs=max(epochs, 1)))
        model.fit(splits["train"], show_progress=False, **({} if epochs else {"max_steps": 1}))
        res = evaluate_model(model, splits["train"], splits["test"], ks=10, metrics=["ndcg"], show_progress=False)
        ndcg[name] = res.summary["ndcg@10"]
    assert ndcg["trained"] > 1.25 * ndcg["untrained"], ndcg


def _chain_log(num_users=300, num_items=50, seed=0):
    """Each user walks a ring of items (i, i + 1, ...) from a random start: the next item is fully determined by the
    previous one, and every item is equally popular (so popularity ranks it no better than chance)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(num_users):
        start, length = rng.integers(num_items), rng.integers(8, 20)
        rows += [(f"u{u}", f"i{(start + t) % num_items}", 1.0, t) for t in range(length)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"])


def test_masked_model_learns_the_next_item_and_beats_popularity():
    """The BERT4Rec-style model (mask token appended to the history at inference, loss only at masked positions)
    learns a log whose next item follows from the last one, far above popularity."""
    from hf_recsys import MostPopularConfig, MostPopularModel
    from hf_recsys.data import leave_last_out
    from hf_recsys.evaluation import evaluate_model

    splits = leave_last_out(_chain_log())
    cfg = dict(TINY, max_sequence_length=20, hidden_size=32, dropout=0.1, epochs=20, batch_size=32, learning_rate=5e-3)
    torch.manual_seed(0)
    model = MaskedSequentialRecommender(MaskedSequentialConfig(**cfg, positions="items")).fit(
        splits["train"], show_progress=False
    )
    popular = MostPopularModel(MostPopularConfig()).fit(splits["train"])
    ndcg = {
        name: evaluate_model(m, splits["train"], splits["test"], ks=10, metrics=["ndcg"], show_progress=False).summary[
            "ndcg@10"
        ]
        for name, m in (("masked", model), ("popular", popular))
    }
    assert ndcg["masked"] > 0.5 and ndcg["masked"] > 3 * ndcg["popular"], ndcg


def test_compile_option_compiles_the_backbone_in_place_and_keeps_the_parameter_names():
    from hf_recsys.training.engine import TrainingOptions, compile_model

    model = CausalSequentialRecommender(CausalSequentialConfig(**TINY, compile=True))
    assert TrainingOptions.from_config(model.config).compile is True
    names = list(model.state_dict())
    assert compile_model(model) is model.backbone and model.backbone._compiled_call_impl is not None
    assert list(model.state_dict()) == names
    with pytest.raises(ValueError, match="compile"):
        CausalSequentialConfig(compile="yes")


@pytest.mark.parametrize(
    "cls, cfg_cls",
    [(CausalSequentialRecommender, CausalSequentialConfig), (MaskedSequentialRecommender, MaskedSequentialConfig)],
)
def test_group_by_length_cuts_the_padding_without_changing_the_loss(cls, cfg_cls):
    """group_by_length: a batch loses the left-padding columns no row uses, its loss is the padded window's
    (positions="items") weighed by its predicted positions against an average user's, and the examples carry their
    window lengths for the engine's grouping."""
    from hf_recsys.data import build_vocabs, encode_interactions

    log = tiny_log()
    models, examples = [], []
    for grouped in (True, False):
        torch.manual_seed(0)
        kw = TINY | {"max_sequence_length": 30, "dropout": 0.0, "positions": "items", "group_by_length": grouped}
        model = cls(cfg_cls(**kw))
        model.set_vocabs(*build_vocabs(log))
        examples.append(model.training_examples(encode_interactions(log, model.user_vocab, model.item_vocab)))
        models.append(model.eval())
    assert examples[0].group_lengths is not None and examples[1].group_lengths is None
    assert len(examples[0].group_lengths) == len(examples[0]) and int(examples[0].group_lengths.max()) <= 30
    idx = torch.arange(3)
    cut, full = (ex.collate(idx, torch.Generator().manual_seed(1)) for ex in examples)
    assert cut["input_ids"].shape[1] < full["input_ids"].shape[1] == 30 and "loss_scale" not in full
    for k in full:  # the same batch, left columns of padding removed
        width = cut[k].shape[1]
        assert torch.equal(full[k][:, -width:], cut[k]) and not (full["input_ids"][:, :-width] != 0).any()
    # weighed by its history tokens against an average user's
    every = examples[1].collate(torch.arange(len(examples[1])), torch.Generator().manual_seed(1))
    per_user = float((every["input_ids"] != 0).sum()) / len(examples[1])
    expected = int((full["input_ids"] != 0).sum()) / (3 * per_user)
    torch.testing.assert_close(float(cut["loss_scale"]), expected)
    with torch.no_grad():
        torch.testing.assert_close(models[0](**cut).loss, models[1](**full).loss * cut["loss_scale"])


def test_length_grouped_order_is_a_seeded_permutation_of_similar_length_batches():
    from hf_recsys.training.trainer import LENGTH_GROUP_STEPS, length_grouped_permutation

    lengths = torch.randint(1, 200, (1000,), generator=torch.Generator().manual_seed(0))
    order = length_grouped_permutation(lengths, 16, seed=3, epoch=1)
    assert torch.equal(order.sort().values, torch.arange(1000))  # every example once
    assert torch.equal(order, length_grouped_permutation(lengths, 16, seed=3, epoch=1))
    assert not torch.equal(order, length_grouped_permutation(lengths, 16, seed=3, epoch=2))
    assert len(order) % 16 == 1000 % 16  # the short step is the last
    steps = order[: len(order) // 16 * 16].view(-1, 16)
    padded = lengths[steps].max(1).values.sum() * 16
    random_padded = lengths[torch.randperm(1000)[: len(steps) * 16].view(-1, 16)].max(1).values.sum() * 16
    assert padded < 0.75 * random_padded  # far less padding than random batches
    assert LENGTH_GROUP_STEPS > 1


def test_group_by_length_needs_item_positions():
    with pytest.raises(ValueError, match="group_by_length=True needs positions='items'"):
        CausalSequentialConfig(group_by_length=True)
    with pytest.raises(ValueError, match="group_by_length must be true or false"):
        CausalSequentialConfig(positions="items", group_by_length="yes")
