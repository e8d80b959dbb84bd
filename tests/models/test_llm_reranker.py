"""The LLM re-ranker: a tiny random Llama with a word-level tokenizer (fast), the real SmolLM2 (slow)."""

import json
import os

import numpy as np
import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from hf_recsys import AutoModelForRecommendation, MostPopularConfig, MostPopularModel
from hf_recsys.models.llm_reranker import LLMReranker, LLMRerankerConfig
from hf_recsys.models.llm_reranker.modeling_llm_reranker import OUTSIDE_OFFSET
from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender
from hf_recsys.testing_utils import partial_fit_log, tiny_log

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _titles(log):
    ids = sorted(log.item_id.unique())
    return ids, [f"{'comedy' if (i // 10) % 2 else 'drama'} film {i}" for i in ids]


def _reranker(first, path, **kw):
    log = tiny_log()
    torch.manual_seed(0)
    opts = {"num_candidates": 6, "history_length": 3, "lora_r": 4, "batch_size": 16, "learning_rate": 1e-2} | kw
    model = LLMReranker.from_first_stage(first, backbone_name_or_path=path, **opts)
    return model.fit(log, item_texts=_titles(log), show_progress=False), log


def test_reranks_first_stage_candidates_trains_adapter_only_and_roundtrips(tiny_lm, tmp_path):
    log = tiny_log()
    first = MostPopularModel(MostPopularConfig()).fit(log)
    fresh = LLMReranker.from_first_stage(first, backbone_name_or_path=tiny_lm)
    frozen = {n: p.clone() for n, p in fresh.named_parameters()}
    model, _ = _reranker(first, tiny_lm, epochs=2)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable), "only the LoRA adapter trains"
    params = dict(model.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in frozen.items() if "lora_" not in n)
    assert len(model.last_training_history.step_losses) == 2 * int(np.ceil(40 * 2 / 16))

    users = ["u1", "u2", "u9"]
    ids, scores = model.recommend(users, k=10)
    first_ids, _ = first.recommend(users, k=6)
    for row, frow in zip(ids, first_ids):  # the top 6 are the first stage's 6 candidates, re-ordered
        assert set(row[:6]) == set(frow)
    assert (scores[:, :6] > OUTSIDE_OFFSET / 2).all() and (scores[:, 6:] < OUTSIDE_OFFSET / 2).all()
    for u, row in zip(users, ids):  # below them, the others in the first stage's order
        fs = first.score([u], list(row))[0]
        assert (np.diff(fs[6:]) <= 0).all() and fs[6:].max() <= fs[:6].min()

    log = tiny_log()
    part = type(model).from_first_stage(first, backbone_name_or_path=tiny_lm, num_candidates=6, history_length=3)
    part.fit(log[log.user_id.isin(["u1", "u3"])], item_texts=_titles(log), show_progress=False)
    assert (part.user_history[part.user_vocab.encode(["u2"])] == -1).all()
    part.update_histories(log)
    np.testing.assert_array_equal(part.user_history.numpy(), model.user_history.numpy())
    assert (part.seen_items != model.seen_items).nnz == 0

    model.save_pretrained(tmp_path)
    names = set(os.listdir(tmp_path))
    assert {"first_stage", "item_texts.json", "adapter_model.safetensors", "adapter_config.json"} <= names
    assert AutoModelForRecommendation.from_pretrained(tmp_path / "first_stage").config.model_type == "most_popular"
    assert json.loads((tmp_path / "adapter_config.json").read_text())["base_model_name_or_path"] == tiny_lm
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    assert isinstance(loaded, LLMReranker) and isinstance(loaded.first_stage, MostPopularModel)
    got = loaded.recommend(users, k=10)
    np.testing.assert_array_equal(got[0], ids)
    np.testing.assert_array_equal(got[1], scores)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_lm), str(tmp_path))
    ours = {k.replace(".default", ""): v for k, v in model.backbone.state_dict().items() if "lora_" in k}
    theirs = {k.replace(".default", ""): v for k, v in peft_model.state_dict().items() if "lora_" in k}
    assert ours and ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


def test_cold_user_histories_through_a_sequential_first_stage(tiny_lm):
    log = tiny_log()
    first = CausalSequentialRecommender(CausalSequentialConfig(max_sequence_length=8, hidden_size=16, num_layers=1))
    first.fit(log, epochs=1, show_progress=False)
    model, _ = _reranker(first, tiny_lm, num_negatives=2)
    assert model.supports_history
    hist = [[17, 37, 57]]
    ids, scores = model.recommend(["new"], histories=hist, k=8)
    assert set(ids[0][:6]) == set(first.recommend(["new"], histories=hist, k=6)[0][0])
    assert not set(ids[0]) & set(hist[0])
    p = model.prompt(model.item_vocab.encode([17, 37]), model.item_vocab.encode([57])[0])
    assert "film 17; comedy film 37" in p and "enjoy comedy film 57?" in p


def test_errors_name_the_problem(tiny_lm):
    with pytest.raises(ValueError, match="candidate"):
        LLMRerankerConfig(prompt_template="{history} only")
    with pytest.raises(ValueError, match="first stage"):
        LLMReranker(LLMRerankerConfig(backbone_name_or_path=tiny_lm)).fit(tiny_log(), show_progress=False)
    first = MostPopularModel(MostPopularConfig()).fit(tiny_log())
    model = LLMReranker.from_first_stage(first, backbone_name_or_path=tiny_lm)
    with pytest.raises(ValueError, match="item texts"):
        model.fit(tiny_log(), show_progress=False)


@pytest.mark.slow
def test_smollm2_reranker_trains_and_roundtrips(smollm2, tmp_path):
    log = tiny_log(num_users=8)
    first = MostPopularModel(MostPopularConfig()).fit(log)
    torch.manual_seed(0)
    model = LLMReranker.from_first_stage(
        first, backbone_name_or_path=smollm2, num_candidates=3, history_length=2, lora_r=4, lora_layers=[29],
        batch_size=8, learning_rate=1e-3, precision="bf16",
    )  # fmt: skip
    model.fit(log, item_texts=_titles(log), show_progress=False)
    trainable, total = model.num_parameters_by_trainability()
    assert total > 100_000_000 and 0 < trainable < 0.001 * total
    expected = model.recommend(["u1", "u2"], k=4)
    model.save_pretrained(tmp_path)
    assert os.path.getsize(tmp_path / "model.safetensors") < 1_000_000, "the frozen LLM was saved"
    got = AutoModelForRecommendation.from_pretrained(tmp_path).recommend(["u1", "u2"], k=4)
    np.testing.assert_array_equal(got[0], expected[0])
    np.testing.assert_allclose(got[1], expected[1], rtol=0, atol=0)
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(smollm2), str(tmp_path))


def test_prefix_cache_scores_equal_the_plain_path(tiny_lm):
    log = tiny_log()
    first = MostPopularModel(MostPopularConfig()).fit(log)
    model, _ = _reranker(first, tiny_lm, epochs=1)
    users = model.user_vocab.encode(["u1", "u2", "u3", "u9"])
    hist = model.user_history[torch.as_tensor(users)].numpy().copy()
    hist[1, :2] = -1  # histories of different lengths: left padding in the prefix batch
    hist[2] = -1  # no history: "nothing yet"
    cand = np.stack([np.arange(6), np.arange(6, 12)[::-1], np.array([3, 13, 7, 1, 0, 12]), np.arange(14, 20)])
    model.score_batch_size = 12  # two users per prefix batch, candidates of different token lengths
    calls = []
    cached = model._prefix_cached_scores
    model._prefix_cached_scores = lambda *a: calls.append(len(a[0])) or cached(*a)
    fast = model._llm_scores(hist, cand)
    assert calls == [2, 2], "the fast path ran"
    model.prefix_cache = False
    plain = model._llm_scores(hist, cand)
    assert fast.shape == (4, 6) and torch.isfinite(fast).all() and fast.std() > 0
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-4)
    model.prefix_cache, model.config.max_prompt_length = True, 12  # every prompt cut: the plain path for all
    torch.testing.assert_close(model._llm_scores(hist, cand), plain_cut := model._llm_scores(hist, cand))
    assert not torch.allclose(plain_cut, plain)


def test_partial_fit_passes_the_update_to_the_first_stage(tiny_lm):
    log = tiny_log()
    first = MostPopularModel(MostPopularConfig()).fit(log)
    model, _ = _reranker(first, tiny_lm, epochs=1)
    lora = {n: p.clone() for n, p in model.named_parameters() if p.requires_grad}
    known = log.user_id.iloc[0]
    before = model.user_history[model.user_vocab.encode([known])[0]].tolist()
    new = partial_fit_log(log)
    reference = MostPopularModel(MostPopularConfig()).fit(log).partial_fit(new)
    model.partial_fit(new, item_texts=([9001], ["comedy film 201"]))

    assert model.first_stage is first and len(first.item_vocab) == len(log.item_id.unique()) + 2
    assert model.user_vocab is first.user_vocab and model.item_vocab is first.item_vocab
    assert model.config.num_items == first.config.num_items and (model.seen_items != first.seen_items).nnz == 0
    users = [known, "new-a", "new-b"]
    np.testing.assert_array_equal(first.recommend(users, k=5)[0], reference.recommend(users, k=5)[0])
    rows = model.user_vocab.encode(users)
    hist = model.user_history[torch.as_tensor(rows)].tolist()
    new_items = model.item_vocab.encode([9001, 9002]).tolist()
    assert hist[0] == [*before[2:], *new_items], "the known user's new items follow the stored ones, in time order"
    assert hist[2][-2:] == model.item_vocab.encode([9002, 9001]).tolist()
    assert model.item_texts[new_items[0]] == "comedy film 201" and model.item_texts[new_items[1]] == "item 9002"
    assert model.config.fitted_log["last_timestamp"] == int(new.timestamp.max())
    params = dict(model.named_parameters())
    assert all(torch.equal(p, params[n]) for n, p in lora.items()), "the adapter stays as tuned"
    ids, scores = model.recommend(users, k=8)
    for row, frow in zip(ids, first.recommend(users, k=6)[0]):
        assert set(row[:6]) == set(frow)
    with pytest.raises(ValueError, match="rating"):
        model.partial_fit(new.drop(columns="rating"))
    assert len(first.item_vocab) == len(log.item_id.unique()) + 2
