"""LoRA saves are peft-native: adapter_model.safetensors + adapter_config.json that PeftModel.from_pretrained opens,
beside the recommender's own files; old saves (adapter weights inside model.safetensors) still load."""

import json
import os

import numpy as np
import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file, save_file
from transformers import GPT2Config, GPT2Model, ViTConfig, ViTModel

from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel
from hf_recsys.serialization import write_config_manifest
from hf_recsys.testing_utils import tiny_log

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    cfg = GPT2Config(n_layer=2, n_embd=16, n_head=2, n_positions=8, vocab_size=1, bos_token_id=None, eos_token_id=None)
    GPT2Model(cfg).save_pretrained(folder)
    return str(folder)


def _lora_sequential(base: str) -> CausalSequentialRecommender:
    torch.manual_seed(0)
    model = CausalSequentialRecommender(
        CausalSequentialConfig(max_sequence_length=8, backbone_name_or_path=base, use_lora=True, lora_r=4)
    )
    model.fit(tiny_log(), epochs=2, learning_rate=1e-2, show_progress=False)
    return model


def _lora_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k.replace(".default", ""): v for k, v in module.state_dict().items() if "lora_" in k}


def test_sequential_lora_save_is_a_peft_adapter(gpt2_folder, tmp_path):
    model = _lora_sequential(gpt2_folder)
    users = ["u1", "u2", "u5"]
    expected = model.recommend(users, k=5)
    model.save_pretrained(tmp_path)
    names = set(os.listdir(tmp_path))
    assert {"adapter_model.safetensors", "adapter_config.json", "model.safetensors", "config.json"} <= names
    assert "README.md" not in names, "peft's own card must not replace the model card"
    manifest = json.loads((tmp_path / "config.json").read_text())["hf_recsys_files"]
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(manifest)
    adapter_cfg = json.loads((tmp_path / "adapter_config.json").read_text())
    assert adapter_cfg["base_model_name_or_path"] == gpt2_folder and adapter_cfg["peft_type"] == "LORA"
    assert not any("lora_" in k for k in load_file(tmp_path / "model.safetensors"))

    peft_model = PeftModel.from_pretrained(GPT2Model.from_pretrained(gpt2_folder), str(tmp_path))
    ours, theirs = _lora_state(model.backbone), _lora_state(peft_model)
    assert ours.keys() == theirs.keys() and ours
    assert all(torch.equal(ours[k], theirs[k]) for k in ours)
    x = torch.randn(2, 8, 16)
    with torch.no_grad():
        np.testing.assert_allclose(
            peft_model(inputs_embeds=x).last_hidden_state, model.backbone(inputs_embeds=x).last_hidden_state, atol=1e-6
        )

    loaded = CausalSequentialRecommender.from_pretrained(tmp_path)
    got = loaded.recommend(users, k=5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
    merged = loaded.merge_adapter()
    np.testing.assert_allclose(merged.recommend(users, k=5)[1], expected[1], rtol=1e-4, atol=1e-5)
    merged.save_pretrained(tmp_path / "merged")
    assert not (tmp_path / "merged" / "adapter_model.safetensors").exists()


def test_old_saves_with_lora_in_model_safetensors_still_load(gpt2_folder, tmp_path):
    model = _lora_sequential(gpt2_folder)
    expected = model.recommend(["u1", "u3"], k=5)
    model.save_pretrained(tmp_path)
    # rewrite it as hf-recsys saved LoRA models before the peft format: adapter weights inside model.safetensors
    state = {k: v.contiguous() for k, v in model.state_dict().items() if not k.startswith("backbone.") or "lora_" in k}
    save_file(state, tmp_path / "model.safetensors", metadata={"format": "pt"})
    os.remove(tmp_path / "adapter_model.safetensors")
    os.remove(tmp_path / "adapter_config.json")
    write_config_manifest(tmp_path)
    got = CausalSequentialRecommender.from_pretrained(tmp_path).recommend(["u1", "u3"], k=5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])


def test_adapter_of_another_shape_is_refused(gpt2_folder, tmp_path):
    _lora_sequential(gpt2_folder).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["lora_r"] = 2
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    write_config_manifest(tmp_path)
    with pytest.raises(ValueError, match="adapter_model.safetensors"):
        CausalSequentialRecommender.from_pretrained(tmp_path)


def test_two_tower_lora_save_is_a_peft_adapter(tmp_path):
    vit = tmp_path / "vit"
    torch.manual_seed(0)
    vit_cfg = ViTConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64
    )
    ViTModel(vit_cfg).save_pretrained(vit)
    log = tiny_log()
    items = sorted(log["item_id"].unique())
    pixels = np.random.default_rng(0).normal(size=(len(items), 3, 32, 32)).astype(np.float32)
    model = TwoTowerModel(
        TwoTowerConfig(modality="image", backbone_name_or_path=str(vit), use_lora=True, lora_r=2, embedding_dim=16)
    )
    model.fit(log, item_images=(items, pixels), epochs=1, batch_size=64, show_progress=False)
    expected = model.recommend(["u1", "u2"], k=5)
    model.save_pretrained(tmp_path / "tt")
    peft_model = PeftModel.from_pretrained(ViTModel.from_pretrained(vit), str(tmp_path / "tt"))
    ours, theirs = _lora_state(model.backbone), _lora_state(peft_model)
    assert ours and all(torch.equal(ours[k], theirs[k]) for k in ours)
    got = TwoTowerModel.from_pretrained(tmp_path / "tt").recommend(["u1", "u2"], k=5)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_array_equal(got[1], expected[1])
