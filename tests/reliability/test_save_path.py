"""One save path: atomic swaps, a manifest over the model's own files, verification before reading, refusal of paths
leaving the folder, and clear errors for damaged files (issue 15, defects 1, 2, 4, 12, 13 and the raw tracebacks).

Exceptions are matched by their base classes and messages (not by new class names), so that each test also runs,
and fails, against the code before the fix.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np
import pandas as pd
import pytest

from hf_recsys import AutoModelForRecommendation, MostPopularConfig, MostPopularModel
from hf_recsys.testing_utils import tiny_log

MANIFEST = "hf_recsys_files"


def fit(seed: int, num_users: int = 40) -> MostPopularModel:
    return MostPopularModel(MostPopularConfig()).fit(tiny_log(num_users=num_users, seed=seed), show_progress=False)


def same_model(a, b) -> bool:
    users = list(a.user_vocab.ids[:5])
    return len(a.user_vocab) == len(b.user_vocab) and np.array_equal(
        a.recommend(users, k=5)[0], b.recommend(users, k=5)[0]
    )


@pytest.fixture
def old_and_new():
    return fit(0, num_users=40), fit(1, num_users=30)


def _disk_full(*args, **kwargs):
    raise OSError(28, "No space left on device")


# ---------------------------------------------------------------------------------------------- defect 1
def test_defect1_failed_save_over_a_model_leaves_the_complete_old_one(old_and_new, tmp_path, monkeypatch):
    old, new = old_and_new
    old.save_pretrained(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr("hf_recsys.modeling_utils.save_vocabs", _disk_full)  # fails after config and weights
    with pytest.raises(OSError, match="No space left"):
        new.save_pretrained(tmp_path)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before, "the old files must be untouched"
    assert [p.name for p in tmp_path.parent.iterdir() if p.name.startswith(f".{tmp_path.name}")] == []
    assert same_model(AutoModelForRecommendation.from_pretrained(tmp_path), old)


def test_defect1_save_over_a_model_replaces_it_completely(old_and_new, tmp_path):
    old, new = old_and_new
    old.save_pretrained(tmp_path)
    new.save_pretrained(tmp_path)
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    assert same_model(loaded, new) and len(loaded.user_vocab) == 30


# ---------------------------------------------------------------------------------------------- defect 2
def test_defect2_manifest_lists_only_the_models_own_files(old_and_new, tmp_path):
    old, new = old_and_new
    (tmp_path / "checkpoint-10").mkdir(parents=True)
    (tmp_path / "checkpoint-10" / "model.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "best").mkdir()
    (tmp_path / "best" / "best.json").write_text("{}")
    (tmp_path / "train_results.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("my notes")
    old.save_pretrained(tmp_path)
    manifest = json.loads((tmp_path / "config.json").read_text())[MANIFEST]
    assert set(manifest) == {"model.safetensors", "id_vocab.json", "seen_items.safetensors"}
    # the user's files and the run's checkpoints are theirs: editing or deleting them does not break loading
    (tmp_path / "notes.txt").write_text("edited")
    (tmp_path / "checkpoint-10" / "model.safetensors").unlink()
    assert same_model(AutoModelForRecommendation.from_pretrained(tmp_path), old)
    new.save_pretrained(tmp_path)  # and a later save keeps them
    assert (tmp_path / "notes.txt").read_text() == "edited" and (tmp_path / "best" / "best.json").is_file()
    assert (tmp_path / "train_results.json").is_file() and (tmp_path / "checkpoint-10").is_dir()
    assert same_model(AutoModelForRecommendation.from_pretrained(tmp_path), new)


# ---------------------------------------------------------------------------------------------- defect 4
def test_defect4_failed_evaluate_record_keeps_a_verified_config(tmp_path, monkeypatch):
    from hf_recsys.cli import main

    log = tiny_log()
    csv = tmp_path / "log.csv"
    log.to_csv(csv, index=False)
    model_dir = tmp_path / "model"
    assert main(["fit", "--model-type", "most_popular", "--train", str(csv), "--output", str(model_dir)]) == 0
    config_before = (model_dir / "config.json").read_text()
    monkeypatch.setattr("hf_recsys.modeling_utils.save_vocabs", _disk_full)
    with pytest.raises(OSError, match="No space left"):
        main(["evaluate", "--model", str(model_dir), "--train", str(csv), "--test", str(csv), "--record"])
    monkeypatch.undo()
    assert (model_dir / "config.json").read_text() == config_before
    assert MANIFEST in json.loads(config_before)
    AutoModelForRecommendation.from_pretrained(model_dir)


# ---------------------------------------------------------------------------------------------- defect 12
def _add_to_manifest(folder, name, target_bytes: bytes) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg[MANIFEST][name] = {"size": len(target_bytes), "sha256": hashlib.sha256(target_bytes).hexdigest()}
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("how", ["dotdot", "absolute"])
def test_defect12_manifest_entries_outside_the_folder_are_refused(old_and_new, tmp_path, how):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    folder = tmp_path / "model"
    old_and_new[0].save_pretrained(folder)
    _add_to_manifest(folder, "../secret.txt" if how == "dotdot" else str(secret), secret.read_bytes())
    # without the refusal, the load succeeds exactly when the guess of the outside file's content is right
    with pytest.raises(ValueError, match="outside the checkpoint folder"):
        AutoModelForRecommendation.from_pretrained(folder)


def test_defect12_a_symlink_leaving_the_folder_is_refused(old_and_new, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"top secret")
    folder = tmp_path / "model"
    old_and_new[0].save_pretrained(folder)
    os.symlink(secret, folder / "link.txt")
    _add_to_manifest(folder, "link.txt", secret.read_bytes())
    with pytest.raises(ValueError, match="outside the folder"):
        AutoModelForRecommendation.from_pretrained(folder)


def test_defect12_save_does_not_follow_a_symlinked_config(old_and_new, tmp_path):
    victim = tmp_path / "victim.json"
    victim.write_text('{"precious": true}')
    folder = tmp_path / "model"
    folder.mkdir()
    os.symlink(victim, folder / "config.json")
    with pytest.raises(ValueError, match="symbolic link"):
        old_and_new[0].save_pretrained(folder)
    assert victim.read_text() == '{"precious": true}'


def test_saving_into_the_working_directory_is_refused(old_and_new, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="current working directory"):
        old_and_new[0].save_pretrained(".")
    old_and_new[0].save_pretrained("model")  # a sub-folder is fine
    assert same_model(AutoModelForRecommendation.from_pretrained("model"), old_and_new[0])


# ---------------------------------------------------------------------------------------------- defect 13
def test_defect13_manifest_is_verified_before_the_weights_are_read(old_and_new, tmp_path):
    folder = tmp_path / "model"
    old_and_new[0].save_pretrained(folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(b"\xff" * weights.stat().st_size)  # same size, not safetensors: reading it first would fail
    with pytest.raises(OSError, match="changed: model.safetensors"):
        AutoModelForRecommendation.from_pretrained(folder)


# ---------------------------------------------------------------------------------------------- raw tracebacks
def test_manifest_stored_as_a_list_is_a_clear_error(old_and_new, tmp_path):
    old_and_new[0].save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg[MANIFEST] = list(cfg[MANIFEST])
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(OSError, match="manifest .*malformed"):
        AutoModelForRecommendation.from_pretrained(tmp_path)


def _rewrite_unlisted(folder, name: str, data: bytes) -> None:
    """Replace a file and drop the manifest, as an older save (without manifest) with a damaged file would be."""
    (folder / name).write_bytes(data)
    cfg = json.loads((folder / "config.json").read_text())
    cfg.pop(MANIFEST)
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.mark.parametrize("payload", [{"format": 1, "users": 5, "items": None}, {"users": {"dtype": "int64"}}, []])
def test_malformed_vocabulary_is_a_clear_error(old_and_new, tmp_path, payload):
    old_and_new[0].save_pretrained(tmp_path)
    _rewrite_unlisted(tmp_path, "id_vocab.json", json.dumps(payload).encode())
    with pytest.raises(ValueError, match="id_vocab.json"):
        AutoModelForRecommendation.from_pretrained(tmp_path)


def test_wrong_seen_items_shape_is_a_clear_error(old_and_new, tmp_path):
    import torch
    from safetensors.torch import save

    old_and_new[0].save_pretrained(tmp_path)
    bad = {"indptr": torch.zeros(3, dtype=torch.int64), "indices": torch.zeros(0, dtype=torch.int64)}
    bad["shape"] = torch.tensor([2, 3], dtype=torch.int64)
    _rewrite_unlisted(tmp_path, "seen_items.safetensors", save(bad))
    with pytest.raises(ValueError, match="seen-items"):
        AutoModelForRecommendation.from_pretrained(tmp_path)


def test_no_import_cycle_between_modeling_utils_hub_and_auto():
    """modeling_utils -> hub -> auto -> modeling_utils was a cycle; hub no longer imports auto at all."""
    import ast
    import inspect

    import hf_recsys.hub as hub
    import hf_recsys.serialization as serialization

    for module in (hub, serialization):
        tree = ast.parse(inspect.getsource(module))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        assert not imported & {"auto", "modeling_utils"}, (module.__name__, imported)


def test_save_for_hub_writes_the_manifest_once_without_the_card(old_and_new, tmp_path):
    from hf_recsys.hub import save_for_hub

    save_for_hub(old_and_new[0], tmp_path, repo_id="org/x")
    assert (tmp_path / "README.md").is_file()
    manifest = json.loads((tmp_path / "config.json").read_text())[MANIFEST]
    assert "README.md" not in manifest and set(manifest) == {p.name for p in tmp_path.iterdir()} - {
        "config.json",
        "README.md",
    }


def test_roundtrip_keeps_recommendations(tmp_path):
    model = fit(4)
    model.save_pretrained(tmp_path)
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    users = list(model.user_vocab.ids)
    np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], model.recommend(users, k=5)[0])
    assert isinstance(loaded.user_vocab.ids[0], str) and pd.api.types.is_integer_dtype(loaded.item_vocab.ids)
