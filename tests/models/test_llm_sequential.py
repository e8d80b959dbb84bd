"""LLM-backbone next-item recommender: tiny random Llama configs (fast), the real SmolLM2 (slow)."""

import json
import os

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModel, LlamaConfig, LlamaModel

from hf_recsys import AutoModelForRecommendation
from hf_recsys.hub import build_model_card
from hf_recsys.models.llm_sequential import LLMSequentialConfig, LLMSequentialRecommender
from hf_recsys.testing_utils import RecommenderContractTests, tiny_log

TINY = {"max_sequence_length": 8, "hidden_size": 32, "num_layers": 1, "num_heads": 2, "item_embedding_dim": 16}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TestLLMSequentialContract(RecommenderContractTests):
    model_type = "llm_sequential"
    config_kwargs = {**TINY, "lora_r": 4}
    fit_kwargs = {"epochs": 2, "learning_rate": 1e-2}
    check_similar_items = True


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory):
    """A tiny 'pretrained' Llama folder, so that the backbone is rebuilt from base_model like a real LLM's."""
    folder = tmp_path_factory.mktemp("llama")
    torch.manual_seed(0)
    cfg = LlamaConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
        vocab_size=16, max_position_embeddings=16, tie_word_embeddings=False,
    )  # fmt: skip
    LlamaModel(cfg).save_pretrained(folder)
    return str(folder)


def _check_trains_adapter_and_head_only(model, log, **fit):
    named = model.named_parameters()
    base = {n: p.detach().clone() for n, p in named if n.startswith("backbone.") and "lora_" not in n}
    model.fit(log, show_progress=False, **fit)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable if n.startswith("backbone.")), "only the adapter of the LLM trains"
    assert any("lora_" in n for n in trainable)
    assert {"item_embeddings.weight", "input_projection.weight", "output_projection.weight"} <= set(trainable)
    params = dict(model.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in base.items()), "the frozen LLM changed"
    lora_b = [p for n, p in params.items() if "lora_B" in n]
    assert any(bool(p.abs().sum() > 0) for p in lora_b), "the adapter was not updated"
    return model


def _check_roundtrip_and_peft(model, folder, base_model_cls, base_path):
    users = ["u1", "u2", "u7"]
    expected = model.recommend(users, k=5)
    model.save_pretrained(folder)
    adapter_cfg = json.loads(open(os.path.join(folder, "adapter_config.json")).read())
    assert adapter_cfg["base_model_name_or_path"] == base_path
    assert os.path.getsize(os.path.join(folder, "model.safetensors")) < 2_000_000, "the frozen LLM was saved"
    loaded = AutoModelForRecommendation.from_pretrained(folder)
    assert isinstance(loaded, LLMSequentialRecommender) and loaded.config.base_model == base_path
    got = loaded.recommend(users, k=5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    peft_model = PeftModel.from_pretrained(base_model_cls.from_pretrained(base_path), folder)
    ours = {k.replace(".default", ""): v for k, v in model.backbone.state_dict().items() if "lora_" in k}
    theirs = {k.replace(".default", ""): v for k, v in peft_model.state_dict().items() if "lora_" in k}
    assert ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)
    return loaded, expected


def test_tiny_llama_trains_adapter_and_head_and_roundtrips(tiny_llama, tmp_path):
    torch.manual_seed(0)
    cfg = LLMSequentialConfig(max_sequence_length=8, item_embedding_dim=16, backbone_name_or_path=tiny_llama, lora_r=4)
    model = LLMSequentialRecommender(cfg)
    _check_trains_adapter_and_head_only(model, tiny_log(), epochs=2, learning_rate=1e-2)
    assert model.llm_hidden_size == 32 and model.item_embeddings.embedding_dim == 16
    loaded, expected = _check_roundtrip_and_peft(model, str(tmp_path), AutoModel, tiny_llama)
    card = str(build_model_card(model, base_model="HuggingFaceTB/SmolLM2-135M-Instruct"))
    assert "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card and "adapter_config.json" in card
    merged = loaded.merge_adapter()
    np.testing.assert_allclose(merged.recommend(["u1", "u2", "u7"], k=5)[1], expected[1], rtol=1e-4, atol=1e-5)


def test_histories_text_fusion_and_bf16_scoring():
    log = tiny_log()
    items = sorted(log.item_id.unique())
    text = np.random.default_rng(0).normal(size=(len(items), 12)).astype(np.float32)
    torch.manual_seed(0)
    cfg = LLMSequentialConfig(**TINY, item_text_dim=12, text_fusion="add", precision="bf16")
    model = LLMSequentialRecommender(cfg).fit(log, item_text_embeddings=(items, text), epochs=1, show_progress=False)
    ids, scores = model.recommend(["cold"], histories=[items[:3]], k=4)
    assert ids.shape == (1, 4) and not set(ids[0]) & set(items[:3]) and np.isfinite(scores).all()
    model.config.precision = "fp32"
    ids32, _ = model.recommend(["cold"], histories=[items[:3]], k=4)
    assert len(set(ids32[0]) & set(ids[0])) >= 2, "bf16 scoring ranks like fp32"


def test_config_errors():
    with pytest.raises(ValueError, match="item_embedding_dim"):
        LLMSequentialConfig(item_embedding_dim=0)
    assert LLMSequentialConfig().use_lora and LLMSequentialConfig(use_lora=False).use_lora is False


@pytest.mark.slow
def test_smollm2_backbone_trains_adapter_and_head_and_roundtrips(smollm2, tmp_path):
    torch.manual_seed(0)
    cfg = LLMSequentialConfig(
        max_sequence_length=6, item_embedding_dim=32, backbone_name_or_path=smollm2, lora_r=4, lora_layers=[28, 29]
    )
    model = LLMSequentialRecommender(cfg)
    assert model.llm_hidden_size == 576
    trainable, total = model.num_parameters_by_trainability()
    assert total > 100_000_000 and trainable < 0.01 * total
    log = tiny_log()
    log = log[log.user_id.isin(["u1", "u2", "u3", "u7"])]
    _check_trains_adapter_and_head_only(model, log, epochs=1, batch_size=4, learning_rate=1e-2)
    _check_roundtrip_and_peft(model, str(tmp_path), AutoModel, smollm2)
