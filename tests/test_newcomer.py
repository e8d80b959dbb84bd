"""Issue 16 ("a newcomer's first hour"): unknown options, paths and ids, cold start from the outside, CLI
consistency. One test (or more) per numbered point; 16.1 is in tests/training/test_distributed.py, 16.2 in
tests/test_readme.py."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from transformers import pipeline

from hf_recsys import AutoModelForRecommendation, AutoRecConfig, MostPopularConfig, UnknownIdError
from hf_recsys.cli import main
from hf_recsys.data import find_items, resolve_item
from hf_recsys.training import parse_train_args
from hf_recsys.training.run import build_model

CATALOGUE = pd.DataFrame(
    {
        "item_id": [1, 2, 3, 4],
        "title": ["Toy Story (1995)", "Jumanji (1995)", "Toy Story 2 (1999)", "Heat (1995)"],
        "genres": [np.array(["Animation", "Comedy"]), np.array(["Adventure"]), np.array(["Animation"]), np.array([])],
    }
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """An item_knn model (classic plugin): it has item similarity and histories."""
    pytest.importorskip("hf_recsys_classic")
    base = tmp_path_factory.mktemp("newcomer")
    log = pd.DataFrame(
        {"user_id": [10, 10, 11, 11, 12, 12, 12, 13], "item_id": [1, 2, 1, 3, 2, 3, 4, 4]}
    )
    log.to_csv(base / "train.csv", index=False)
    CATALOGUE.assign(genres=["Animation|Comedy", "Adventure", "Animation", ""]).rename(
        columns={"item_id": "movieId"}
    ).to_csv(base / "movies.csv", index=False)
    model = AutoModelForRecommendation.for_model("item_knn").fit(log, show_progress=False)
    model.save_pretrained(base / "model")
    return base, model


# ---------------------------------------------------------------------------------------- 16.3 unknown options
def test_for_model_refuses_a_typo_with_a_suggestion():
    with pytest.raises(ValueError, match=r"no option 'lamda' \(did you mean 'l2'\?\)"):
        AutoModelForRecommendation.for_model("ease", lamda=5.0)
    with pytest.raises(ValueError, match=r"'weigthing' \(did you mean 'weighting'\?\)"):
        AutoRecConfig.for_model("most_popular", weigthing="users")
    with pytest.raises(ValueError, match=r"did you mean 'factors'"):
        AutoModelForRecommendation.for_model("als", factorz=8)


def test_a_directly_built_config_refuses_a_typo_too():
    from hf_recsys_classic.als.configuration_als import ALSConfig

    with pytest.raises(ValueError, match=r"ALSConfig has no option 'random_state'"):
        ALSConfig(random_state=3)  # before: kept as a silent attribute, the seed left at 0
    assert ALSConfig(seed=3).seed == 3


def test_a_saved_config_with_a_key_this_version_does_not_know_still_loads(tmp_path):
    import json

    AutoRecConfig.for_model("most_popular", weighting="users").save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**saved, "option_of_a_newer_version": 1}))
    config = AutoRecConfig.from_pretrained(tmp_path)
    assert config.weighting == "users" and config.option_of_a_newer_version == 1


def test_transformers_keys_and_saved_configs_still_load(tmp_path):
    model = AutoModelForRecommendation.for_model("most_popular", weighting="users", name_or_path="x", dtype="float32")
    model.config.save_pretrained(tmp_path)
    config = AutoRecConfig.from_pretrained(tmp_path)  # from_pretrained passes every saved key back
    assert isinstance(config, MostPopularConfig) and config.weighting == "users"


def test_cli_set_and_model_config_refuse_unknown_keys(saved, capsys):
    base, _ = saved
    args = ["fit", "--model-type", "ease", "--train", str(base / "train.csv"), "--output", str(base / "e")]
    assert main([*args, "--set", "lambda=500"]) == 2
    assert "did you mean 'l2'" in capsys.readouterr().err
    m, d, t = parse_train_args(
        ["--model_type", "bprmf", "--dataset", "synthetic", "--output_dir", "o", "--model_config", '{"factorz": 8}']
    )
    with pytest.raises(ValueError, match="did you mean 'factors'"):
        build_model(m, pd.DataFrame({"user_id": [1], "item_id": [1]}), 0)


def test_models_describe_lists_options_types_defaults_and_docs(capsys):
    assert main(["models", "describe", "ease"]) == 0
    out = capsys.readouterr().out
    assert "l2: float = 500.0" in out and "regularisation" in out and "solver_dtype: str = 'float32'" in out
    assert "num_users" not in out  # sizes are filled by fit, not options


# ---------------------------------------------------------------------------------------- 16.4 paths and ids
@pytest.mark.parametrize("path", ["no-such-folder/", "./nope", "runs_that_do_not_exist/x/y", "not a repo"])
def test_a_missing_local_folder_is_said_at_once(path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="No such local model folder or Hub repo"):
        AutoModelForRecommendation.from_pretrained(path)


def test_a_path_under_an_existing_local_folder_is_not_sent_to_the_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(FileNotFoundError, match="looks like a local path"):
        AutoModelForRecommendation.from_pretrained("runs/bprmf")


# ---------------------------------------------------------------------------------------- 16.5 cold start
def test_find_items_by_title():
    assert find_items(CATALOGUE, "Toy Story (1995)")[0] == (1, "Toy Story (1995)")
    assert [i for i, _ in find_items(CATALOGUE, "toy story")] == [1, 3]
    assert find_items(CATALOGUE, "Toy Stroy (1995)")[0][0] == 1  # fuzzy
    assert resolve_item(CATALOGUE, "toy story (1995)") == 1
    with pytest.raises(ValueError, match="matches several items"):
        resolve_item(CATALOGUE, "Toy Story")
    with pytest.raises(ValueError, match="No item"):
        resolve_item(CATALOGUE, "Casablanca")


def test_cli_recommend_from_a_history_of_titles_and_unknown_ids(saved, tmp_path, capsys):
    base, model = saved
    out = tmp_path / "recs.csv"
    args = ["recommend", "--model", str(base / "model"), "--k", "2", "--catalogue", str(base / "movies.csv")]
    assert main([*args, "--history", "Toy Story (1995)", "999", "--output", str(out)]) == 2
    assert "--ignore-unknown-items" in capsys.readouterr().err
    assert main([*args, "--history", "Toy Story (1995)", "999", "--ignore-unknown-items", "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert "ignored 1 history item" in err
    recs = pd.read_csv(out)
    expected = model.recommend(["new-user"], k=2, histories={"new-user": [1]})
    finite = np.isfinite(expected.scores[0])
    assert recs["item_id"].tolist() == expected.item_ids[0][finite].tolist()
    assert set(recs["title"]) <= set(CATALOGUE["title"])


def test_cli_unknown_user_hint_names_the_cli_option(saved, capsys):
    base, _ = saved
    assert main(["recommend", "--model", str(base / "model"), "--users", "424242"]) == 2
    err = capsys.readouterr().err
    assert "--history" in err and "histories=" not in err


def test_cli_similar(saved, tmp_path, capsys):
    base, model = saved
    out = tmp_path / "sim.parquet"
    assert main(["similar", "--model", str(base / "model"), "--items", "1", "--k", "2", "--output", str(out)]) == 0
    sim = pd.read_parquet(out)
    assert list(sim.columns[:4]) == ["query_item_id", "item_id", "rank", "score"]
    ids, scores = model.similar_items(1, k=2)
    assert sim["item_id"].tolist() == ids[0][np.isfinite(scores[0])].tolist()


def test_pipeline_similar_items_history_and_json(saved):
    _, model = saved
    rec = pipeline("recommendation", model=model, item_catalogue=CATALOGUE)
    rows = rec({"similar_to": 1}, top_k=2)
    assert [r["item_id"] for r in rows] == [i for i, s in zip(*model.similar_items(1, k=2)) for i, s in
                                            zip(i, s) if np.isfinite(s)]
    both = rec([10, {"similar_to": 2}, {"history": [1, 999]}], top_k=2, ignore_unknown_items=True)
    assert len(both) == 3
    json.dumps(both)  # genres arrays became lists: the output is JSON-serialisable
    assert isinstance(rows[0]["genres"], list)
    with pytest.raises(UnknownIdError) as exc:
        rec(424242)
    assert "'history'" in str(exc.value) and "histories=" not in str(exc.value)


# ---------------------------------------------------------------------------------------- 15.10 CLI filler, --users
def test_cli_drops_filler_rows_and_says_how_many_users_got_fewer(saved, tmp_path, capsys):
    base, model = saved
    out = tmp_path / "recs.parquet"
    assert main(["recommend", "--model", str(base / "model"), "--k", "4", "--output", str(out)]) == 0
    recs = pd.read_parquet(out)
    assert np.isfinite(recs["score"]).all()  # no -inf filler rows
    short = int((recs.groupby("user_id").size() < 4).sum())
    assert f"{short:,} user(s) got fewer than k=4" in capsys.readouterr().err and short > 0


def test_cli_users_without_values_is_an_error(saved):
    base, _ = saved
    with pytest.raises(SystemExit, match="--users needs at least one user id"):
        main(["recommend", "--model", str(base / "model"), "--users"])


# ---------------------------------------------------------------------------------------- 16.8 CLI consistency
def test_train_columns_take_key_value_like_the_other_commands():
    _, d, _ = parse_train_args(["--model_type", "bprmf", "--dataset", "x.csv", "--output_dir", "o",
                                "--columns", "user_id=uid,item_id=iid"])
    assert d.columns == {"user_id": "uid", "item_id": "iid"}
    _, d, _ = parse_train_args(["--model_type", "bprmf", "--dataset", "x.csv", "--output_dir", "o",
                                "--columns", '{"user_id": "uid"}'])
    assert d.columns == {"user_id": "uid"}


def test_train_help_names_the_command_and_every_option_has_help(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: hf-recsys train" in out and "usage: hf-recsys [-h]" not in out
    for option in ("--show_eval_progress", "--adam_beta1"):
        line = out[out.index(option):].split("\n--")[0]
        assert len(line.split()) > 3, f"{option} has no help: {line!r}"
    from hf_recsys.cli import build_parser

    commands = build_parser()._subparsers._group_actions[0].choices
    split = commands["data"]._subparsers._group_actions[0].choices["split"]
    checks = ((split, "method"), (split, "seed"), (commands["evaluate"], "k"), (commands["recommend"], "k"))
    for parser, dest in checks:
        assert next(a for a in parser._actions if a.dest == dest).help, f"{parser.prog} --{dest} has no help"


def test_eval_ks_zero_is_named():
    with pytest.raises(ValueError, match="eval_ks"):
        parse_train_args(["--model_type", "bprmf", "--dataset", "x", "--output_dir", "o", "--eval_ks", "0"])


def test_fit_of_a_gradient_trained_model_says_how_long(saved, tmp_path, capsys):
    base, _ = saved
    args = ["fit", "--model-type", "causal_sequential", "--train", str(base / "train.csv"), "--output",
            str(tmp_path / "m"), "--set", "hidden_size=8", "num_layers=1", "--fit-args", "epochs=1"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "trained by gradient descent" in err and "epochs=1" in err


def test_tensorboard_without_the_package_fails_early(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name.startswith("tensorboard") else real(name, *a)
    )
    with pytest.raises(ValueError, match=r'pip install "hf-recsys\[train\]"'):
        parse_train_args(["--model_type", "bprmf", "--dataset", "x", "--output_dir", "o", "--report_to",
                          "tensorboard"])


# ---------------------------------------------------------------------------------------- 16.6 comparisons
def test_compare_says_which_model_saw_more_items_and_what_to_do(caplog):
    from hf_recsys.evaluation import compare, comparison_table, evaluate_model
    from hf_recsys.testing_utils import tiny_log

    log = tiny_log()
    test = log.groupby("user_id").tail(1)
    train = log.drop(test.index)
    extra = pd.DataFrame({"user_id": [train.user_id.iloc[0]] * 2, "item_id": [10_001, 10_002]})
    more = pd.concat([train[["user_id", "item_id"]], extra], ignore_index=True)
    wide = AutoModelForRecommendation.for_model("most_popular").fit(more, show_progress=False)
    narrow = AutoModelForRecommendation.for_model("most_popular", weighting="users").fit(train, show_progress=False)
    r_wide, r_narrow = (evaluate_model(m, train, test, show_progress=False) for m in (wide, narrow))
    with caplog.at_level("WARNING"):
        compare(r_wide, r_narrow, "ndcg@10")
    n_wide, n_narrow = wide.config.num_items, narrow.config.num_items
    assert f"A (most_popular) ranks among {n_wide} items and B (most_popular) among {n_narrow}" in caplog.text
    assert "Fit both on the same log" in caplog.text
    table = comparison_table({"pop+val": r_wide, "pop": r_narrow})
    assert "pop+val (most_popular) ranks among" in table and "Fit both on the same log" in table


# ---------------------------------------------------------------------------------------- 16.7 training to follow
def _train_config(tmp_path, **extra):
    import yaml

    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({
        "model_type": "causal_sequential",
        "model_config": {"hidden_size": 8, "num_layers": 1, "num_heads": 1, "max_sequence_length": 6},
        "dataset": "synthetic", "synthetic_users": 60, "synthetic_items": 300, "synthetic_interactions": 700,
        "per_device_train_batch_size": 16, "learning_rate": 0.01, "disable_tqdm": True, "logging_steps": 1,
        "output_dir": str(tmp_path / "out"), **extra,
    }))
    return str(config)


@pytest.mark.slow  # about 9 s
def test_train_writes_the_epoch_history_a_plot_and_warns_once(tmp_path, caplog, capsys):
    with caplog.at_level("WARNING"):
        assert main(["train", _train_config(tmp_path, num_train_epochs=3)]) == 0
    out = tmp_path / "out"
    results = json.loads((out / "train_results.json").read_text())
    history = results["history"]
    assert [row["epoch"] for row in history] == [1, 2, 3]
    for row in history:
        assert row["loss"] > 0 and row["seconds"] > 0 and 0 <= row["ndcg@10"] <= 1
    assert results["train_seconds"] >= sum(row["seconds"] for row in history) - 1e-6
    assert (out / "training_curves.png").stat().st_size > 1000
    # 300 items, 700 interactions: some validation items are unknown to the model; said once, not every epoch
    warnings = [r.getMessage() for r in caplog.records if "test (user, item) pairs" in r.getMessage()]
    assert len(warnings) == len(set(warnings)) >= 1
    assert "log_history" not in repr(__import__("hf_recsys.training", fromlist=["TrainerState"]).TrainerState())


def test_train_seconds_after_a_resume_count_every_epoch(tmp_path):
    assert main(["train", _train_config(tmp_path, num_train_epochs=2, save_strategy="epoch")]) == 0
    first = json.loads((tmp_path / "out" / "train_results.json").read_text())
    config = _train_config(tmp_path, num_train_epochs=3, resume_from_checkpoint="latest")
    assert main(["train", config]) == 0
    resumed = json.loads((tmp_path / "out" / "train_results.json").read_text())
    assert [row["epoch"] for row in resumed["history"]] == [1, 2, 3]
    assert resumed["train_seconds"] > resumed["train_seconds_this_run"]
    assert resumed["train_seconds"] >= sum(row["seconds"] for row in first["history"])


def test_a_missing_matplotlib_is_a_one_line_warning(tmp_path, monkeypatch, caplog):
    import builtins

    from hf_recsys.training.history import plot_history

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    with caplog.at_level("WARNING"):
        assert plot_history([{"epoch": 1, "loss": 1.0}], tmp_path / "p.png") is None
    assert "matplotlib is missing" in caplog.text and not (tmp_path / "p.png").exists()


@pytest.mark.slow  # the demo takes 8-25 s
def test_the_demo_prints_no_weight_progress_bars():
    import subprocess
    import sys
    from pathlib import Path

    demo = Path(__file__).resolve().parents[1] / "examples" / "demo.py"
    proc = subprocess.run([sys.executable, str(demo)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "identical recommendations: True" in proc.stdout
    for bar in ("Writing model shards", "Loading weights"):
        assert bar not in proc.stderr + proc.stdout
