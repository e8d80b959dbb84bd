"""Model cards: built from templates and recorded data, read back with huggingface_hub's card metadata parser."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub import ModelCard

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.hub import build_model_card, record_dataset, record_evaluation, templates_dir
from hf_recsys.testing_utils import tiny_log

EXAMPLES = Path(templates_dir()) / "examples"


@pytest.fixture(scope="module")
def fitted():
    log = tiny_log()
    return MostPopularModel(MostPopularConfig(weighting="users")).fit(log, show_progress=False), log


def _parse(card) -> ModelCard:
    """Round-trip through text, so that only what huggingface_hub's parser reads back counts."""
    return ModelCard(str(card))


def _table(text: str) -> dict[str, str]:
    """``| name | value |`` rows of the card body."""
    return {m.group(1).strip(): m.group(2).strip() for m in re.finditer(r"^\| ([^|]+) \| ([^|]+) \|$", text, re.M)}


def test_front_matter_parses_with_library_tags_and_model_index(fitted):
    model, log = fitted
    record_dataset(model, log, name="tiny log", split="none")
    card = _parse(build_model_card(model, {"ndcg@10": 0.25, "recall@10": 0.5}, repo_id="org/tiny-mp"))
    data = card.data
    assert data.library_name == "hf-recsys"
    assert {"recommender-system", "hf-recsys", "most_popular"} <= set(data.tags)
    assert data.model_name == "org/tiny-mp"
    assert {(r.metric_type, r.metric_value) for r in data.eval_results} == {("ndcg@10", 0.25), ("recall@10", 0.5)}
    assert all(r.task_type == "recommendation" and r.dataset_name == "tiny log" for r in data.eval_results)
    assert "model-index" in data.to_dict()
    assert data.base_model is None


def test_card_body_shows_recorded_facts(fitted):
    model, log = fitted
    info = record_dataset(model, log, name="tiny log")
    assert info["num_interactions"] == len(log)
    assert info["num_users"] == log.user_id.nunique() and info["num_items"] == log.item_id.nunique()
    body = _parse(build_model_card(model, repo_id="org/tiny-mp")).text
    rows = _table(body)
    assert rows["num_interactions"] == str(len(log))
    assert rows["`weighting`"] == "`users`"  # a hyper-parameter of the family
    assert "No evaluation was recorded" in body
    assert "| setting | value |" not in body  # no training section without training facts
    trained = _parse(build_model_card(model, repo_id="org/tiny-mp", training={"epochs": 3, "learning_rate": 1e-3}))
    assert _table(trained.text)["`learning_rate`"] == "`0.001`"
    assert "Recommends the globally most popular items" in body  # the family's own description


def test_card_metrics_come_from_an_evaluation_result(fitted):
    from hf_recsys.data.splits import leave_last_out
    from hf_recsys.evaluation import evaluate_model

    _, log = fitted
    splits = leave_last_out(log, n_test=1)
    model = MostPopularModel(MostPopularConfig()).fit(splits["train"], show_progress=False)
    result = evaluate_model(model, splits["train"], splits["test"], ks=(5,), show_progress=False)
    record_evaluation(model, result)
    card = _parse(build_model_card(model, repo_id="org/tiny-mp"))  # from config.evaluation
    got = {r.metric_type: r.metric_value for r in card.data.eval_results}
    assert set(got) == set(result.summary)
    np.testing.assert_allclose([got[k] for k in result.summary], list(result.summary.values()), atol=1e-6)
    assert all(r.metric_config == result.protocol for r in card.data.eval_results)
    assert result.protocol in card.text


def test_backbone_card_records_base_model_and_adapter(fitted, tmp_path):
    model, _ = fitted
    model.config.base_model = "sentence-transformers/all-MiniLM-L6-v2"
    model.config.use_lora, model.config.lora_r, model.config.lora_alpha = True, 8, 16.0
    try:
        card = _parse(build_model_card(model, repo_id="org/tiny-mp"))
        assert card.data.base_model == "sentence-transformers/all-MiniLM-L6-v2"
        assert {"lora", "peft"} <= set(card.data.tags)
        assert "LoRA (peft), rank 8" in card.text
        model.config.base_model = str(tmp_path)  # a local folder is not a Hub id: body only, never metadata
        card = _parse(build_model_card(model, repo_id="org/tiny-mp"))
        assert card.data.base_model is None and str(tmp_path) in card.text
    finally:
        for key in ("base_model", "use_lora", "lora_r", "lora_alpha"):
            delattr(model.config, key)


def test_usage_snippets_in_the_card_run(fitted, tmp_path):
    from hf_recsys.pipelines import register_pipeline

    register_pipeline()
    model, _ = fitted
    model.save_pretrained(tmp_path)
    card = build_model_card(model, repo_id=str(tmp_path))
    snippets = re.findall(r"```python\n(.*?)```", str(card), re.S)
    assert len(snippets) == 2
    scope: dict = {}
    exec(snippets[0], scope)  # noqa: S102 - the card's own usage snippet
    expected = model.recommend(model.user_vocab.decode([0]).tolist(), k=10)
    np.testing.assert_array_equal(scope["item_ids"], expected[0])
    exec(snippets[1], scope)  # noqa: S102
    user = model.user_vocab.decode([0])[0]
    got = [r["item_id"] for r in scope["recommender"](user, top_k=5)]
    assert got == model.recommend([user], k=5)[0][0].tolist()


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.md")), ids=lambda p: p.stem)
def test_example_cards_parse_and_agree_with_their_tables(path):
    card = ModelCard.load(path)
    assert card.data.library_name == "hf-recsys"
    assert {"recommender-system", "hf-recsys", path.stem} <= set(card.data.tags)
    assert card.data.eval_results, "an example card shows real metrics"
    rows = _table(card.text)
    for r in card.data.eval_results:
        assert 0.0 <= r.metric_value <= 1.0
        assert r.dataset_name == "MovieLens ml-latest-small" and r.metric_config.startswith("full-ranking")
        assert float(rows[r.metric_name]) == pytest.approx(r.metric_value, abs=5e-5)


def test_an_example_card_exists_for_the_core_family():
    assert (EXAMPLES / "most_popular.md").is_file()


@pytest.mark.slow
def test_most_popular_example_metrics_reproduce(ml_latest_small):
    spec = importlib.util.spec_from_file_location("render_examples", EXAMPLES / "render_examples.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _, result = script.fit_and_evaluate("most_popular", script.load_splits(ml_latest_small))
    card = ModelCard.load(EXAMPLES / "most_popular.md")
    for r in card.data.eval_results:
        assert result.summary[r.metric_type] == pytest.approx(r.metric_value, abs=1e-6)
