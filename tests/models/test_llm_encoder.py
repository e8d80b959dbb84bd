"""LLM item text embeddings: pooling, the on-disk cache, and (slow) SmolLM2 features in a sequential model."""

import numpy as np
import pytest
import torch
import transformers

from hf_recsys.models.llm import encode_item_text_layers, encode_item_texts


def test_mean_and_last_pooling_shapes_and_cache(tiny_lm, tmp_path, monkeypatch):
    texts = ["comedy film 17", "drama film 20 ; film 3", "film"]
    mean = encode_item_texts(texts, tiny_lm, cache_dir=tmp_path, show_progress=False)
    last = encode_item_texts(texts, tiny_lm, pooling="last", cache_dir=tmp_path, show_progress=False)
    assert mean.shape == last.shape == (3, 32) and mean.dtype == np.float32
    assert not np.allclose(mean, last)
    # the one-token text: its mean is its last state
    np.testing.assert_allclose(mean[2], last[2], rtol=1e-5, atol=1e-6)
    # batching by length must not change a row (padding excluded)
    alone = encode_item_texts(texts[1:2], tiny_lm, cache_dir=tmp_path / "b", show_progress=False)
    np.testing.assert_allclose(alone[0], mean[1], rtol=1e-4, atol=1e-5)
    assert len(list(tmp_path.glob("*.npy"))) == 2
    first = encode_item_texts(texts, tiny_lm, num_layers=1, cache_dir=tmp_path, show_progress=False)
    assert first.shape == (3, 32) and not np.allclose(first, mean)
    # every depth and pooling in one pass: the values encode_item_texts gives for each
    both = encode_item_text_layers(texts, tiny_lm, [1, -1], batch_size=2, show_progress=False)
    assert sorted(both) == [(-1, "last"), (-1, "mean"), (1, "last"), (1, "mean")]
    for got, want in ((both[-1, "mean"], mean), (both[-1, "last"], last), (both[1, "mean"], first)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="decoder layers"):
        encode_item_text_layers(texts, tiny_lm, [3], show_progress=False)

    def no_model(*a, **k):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(transformers.AutoModel, "from_pretrained", no_model)
    np.testing.assert_array_equal(encode_item_texts(texts, tiny_lm, cache_dir=tmp_path, show_progress=False), mean)
    with pytest.raises(AssertionError, match="cache"):  # other texts: a new entry
        encode_item_texts(texts[:2], tiny_lm, cache_dir=tmp_path, show_progress=False)
    with pytest.raises(ValueError, match="pooling"):
        encode_item_texts(texts, tiny_lm, pooling="max")


@pytest.mark.slow
def test_smollm2_item_embeddings_feed_a_sequential_model(smollm2, tmp_path):
    from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log()
    ids = sorted(log.item_id.unique())
    texts = [f"{'Comedy' if (i // 10) % 2 else 'Drama'} movie number {i}" for i in ids]
    feats = encode_item_texts(texts, smollm2, cache_dir=tmp_path, show_progress=False)
    assert feats.shape == (len(ids), 576) and np.isfinite(feats).all()
    sims = np.corrcoef(feats)
    genre = np.array([(i // 10) % 2 for i in ids])
    same = sims[genre[:, None] == genre[None, :]].mean()
    assert same > sims[genre[:, None] != genre[None, :]].mean(), "the LLM's features see the genre word"
    torch.manual_seed(0)
    cfg = CausalSequentialConfig(max_sequence_length=8, hidden_size=16, item_text_dim=576, text_fusion="add")
    model = CausalSequentialRecommender(cfg).fit(log, item_text_embeddings=(ids, feats), epochs=1, show_progress=False)
    assert model.recommend(["u1"], k=3)[0].shape == (1, 3)
