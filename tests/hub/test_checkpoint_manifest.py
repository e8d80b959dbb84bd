"""The file manifest: a checkpoint loads only when every file saved with it is there, unchanged."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.hub import (
    MANIFEST_KEY,
    IncompleteCheckpointError,
    _commit_operations,
    load_model,
    save_for_hub,
    verify_checkpoint,
    write_manifest,
)
from hf_recsys.testing_utils import tiny_log


@pytest.fixture(scope="module")
def model():
    return MostPopularModel(MostPopularConfig()).fit(tiny_log(), show_progress=False)


@pytest.fixture
def saved(model, tmp_path):
    save_for_hub(model, tmp_path, repo_id="org/tiny")
    return tmp_path


def test_manifest_lists_every_file_but_config_and_card(saved):
    manifest = json.loads((saved / "config.json").read_text())[MANIFEST_KEY]
    on_disk = set(os.listdir(saved)) - {"config.json", "README.md"}
    assert set(manifest) == on_disk and {"model.safetensors", "id_vocab.json", "seen_items.safetensors"} <= on_disk
    assert all(m["size"] == (saved / f).stat().st_size for f, m in manifest.items())
    assert verify_checkpoint(saved) == manifest


def test_missing_file_is_refused(saved):
    (saved / "seen_items.safetensors").unlink()
    with pytest.raises(IncompleteCheckpointError, match="missing: seen_items.safetensors"):
        verify_checkpoint(saved)
    with pytest.raises(IncompleteCheckpointError):
        load_model(saved)


def test_file_from_another_save_is_refused(saved, model, tmp_path_factory):
    other = tmp_path_factory.mktemp("other")
    MostPopularModel(MostPopularConfig()).fit(tiny_log(seed=3), show_progress=False).save_pretrained(other)
    (saved / "seen_items.safetensors").write_bytes((other / "seen_items.safetensors").read_bytes())
    with pytest.raises(IncompleteCheckpointError, match="changed: seen_items.safetensors"):
        verify_checkpoint(saved)


def test_edited_card_does_not_break_loading(saved, model):
    (saved / "README.md").write_text("---\nlicense: mit\n---\nEdited on the Hub.\n")
    loaded = load_model(saved)
    np.testing.assert_array_equal(loaded.recommend(["u1"], k=5)[0], model.recommend(["u1"], k=5)[0])
    assert not hasattr(loaded.config, MANIFEST_KEY), "the loaded manifest must not be written into the next save"


def test_checkpoint_without_manifest_still_loads(model, tmp_path):
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config.pop(MANIFEST_KEY, None)  # as saved by a version without manifests
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert verify_checkpoint(tmp_path) is None
    np.testing.assert_array_equal(load_model(tmp_path).recommend(["u1"], k=5)[0], model.recommend(["u1"], k=5)[0])


def test_no_config_is_a_clear_error(tmp_path):
    with pytest.raises(OSError, match="no config.json"):
        verify_checkpoint(tmp_path)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        write_manifest(tmp_path)


def test_push_replaces_stale_weight_files_in_the_same_commit(saved):
    ops = _commit_operations(str(saved), ["model-00001-of-00002.safetensors", "model.safetensors", "notes.txt"])
    adds = {op.path_in_repo for op in ops if type(op).__name__ == "CommitOperationAdd"}
    deletes = {op.path_in_repo for op in ops if type(op).__name__ == "CommitOperationDelete"}
    assert adds == set(os.listdir(saved))
    assert deletes == {"model-00001-of-00002.safetensors"}  # user files such as notes.txt are kept
