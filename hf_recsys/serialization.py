"""Saving folders safely: one manifest scheme, one hashing helper and one atomic folder swap for every save.

Every save of hf-recsys (``save_pretrained`` of any family, the fusion members, ``save_for_hub`` before a push, the
trainer's checkpoints and ``best/``) goes through :func:`atomic_save_dir`:

1. the files are written into a hidden staging folder next to the target (``.<name>.hfrs-new``);
2. every file and folder is fsynced and the folder is verified (``verify``: the manifest is read back and hashed);
3. a marker (``.hfrs-staged``) says the staging folder is complete; entries of the target that are not part of the
   model (``checkpoint-*/``, ``best/``, ``train_results.json``, the user's own files) are moved into it;
4. the target is renamed away (``.<name>.hfrs-old``), the staging folder is renamed into place and the old one is
   removed.

A process killed at any point leaves the complete old folder or a complete staged one; :func:`recover_save` (called
by every save and load of that folder) finishes or undoes the interrupted swap. A manifest maps each file of the
model, by relative path, to ``{"size": bytes, "sha256": hex}``; :func:`verify_manifest` refuses a path that leaves
the folder (``..``, absolute, a symlink pointing out) before reading anything.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Callable, Iterable, Mapping
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Any

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CARD_FILE = "README.md"
#: Key in ``config.json`` holding the manifest of a saved model.
MANIFEST_KEY = "hf_recsys_files"
STAGED_MARKER = ".hfrs-staged"
_NEW, _OLD = ".hfrs-new", ".hfrs-old"
#: Top-level names that belong to a saved model even when an old save has no manifest naming them (older versions).
_MODEL_PATTERNS = (
    CONFIG_FILE, "generation_config.json", "*.safetensors", "*.safetensors.index.json", "*.bin", "id_vocab.json",
    "adapter_config.json", "members", "adapter", "adapters",
)  # fmt: skip


class IncompleteCheckpointError(OSError, ValueError):
    """A saved model or Hub repo lacks files its manifest lists (``OSError``, like a missing file), or holds
    different ones (``ValueError``, like a corrupt file)."""


class UnsafeCheckpointError(ValueError):
    """A manifest names a file outside its folder, or a save would write through a symbolic link."""


class SaveError(OSError):
    """A save failed (disk full, file-size limit, killed writer, ...); the target folder was left as it was."""


# ---------------------------------------------------------------------------------------------- hashing, fsync
def sha256_file(path: str | os.PathLike) -> str:
    """The sha256 hex digest of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_entry(path: str | os.PathLike) -> dict[str, Any]:
    """The manifest entry of one file: ``{"size": bytes, "sha256": hex}``."""
    return {"size": os.path.getsize(path), "sha256": sha256_file(path)}


def fsync_tree(root: str | os.PathLike) -> None:
    """fsync every file and folder under ``root`` (and ``root``), so that a rename after it publishes data on disk."""
    root = Path(root)
    for dirpath, _, files in os.walk(root):
        for name in files:
            with open(os.path.join(dirpath, name), "rb+") as f:
                os.fsync(f.fileno())
        fsync_dir(dirpath)


def fsync_dir(path: str | os.PathLike) -> None:
    """fsync a folder's entry list (where the platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# ---------------------------------------------------------------------------------------------- manifests
def build_manifest(root: str | os.PathLike, exclude: Iterable[str] = (CONFIG_FILE, CARD_FILE)) -> dict[str, Any]:
    """``{relative path: {"size", "sha256"}}`` for every file under ``root`` but ``exclude`` and hidden files.

    Args:
        root: a freshly written folder holding only the model's (or checkpoint's) own files.
        exclude: relative paths not to list (the file that will hold the manifest, the editable card).
    """
    root = Path(root)
    skip = set(exclude)
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if rel not in skip and not any(part.startswith(".") for part in rel.split("/")):
            out[rel] = file_entry(path)
    return out


def safe_member(root: str | os.PathLike, name: Any) -> str:
    """``name`` checked to be a relative path inside ``root``: no ``..``, no absolute path, no backslash.

    Raises:
        UnsafeCheckpointError: the name could point outside the folder.
    """
    if not isinstance(name, str) or not name or "\\" in name or "\x00" in name:
        raise UnsafeCheckpointError(f"The manifest of {root} lists an invalid file name {name!r}; refusing it.")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or os.path.isabs(name) or ".." in parts or not parts:
        raise UnsafeCheckpointError(
            f"The manifest of {root} lists {name!r}, a path outside the checkpoint folder; refusing to read it "
            "(a tampered or malicious checkpoint)."
        )
    return name


def check_manifest_shape(manifest: Any, where: str) -> dict[str, dict[str, Any]]:
    """The manifest if it is ``{name: {"size": int, "sha256": str}}``, else a clear error."""
    if not isinstance(manifest, Mapping) or not all(
        isinstance(m, Mapping) and isinstance(m.get("size"), int) and isinstance(m.get("sha256"), str)
        for m in manifest.values()
    ):
        raise IncompleteCheckpointError(
            f"The file manifest of {where} is malformed (expected {{file: {{'size': int, 'sha256': str}}}}, got "
            f"{type(manifest).__name__}): the config was edited or damaged. Save the model again."
        )
    for name in manifest:
        safe_member(where, name)
    return dict(manifest)


def verify_manifest(root: str | os.PathLike, manifest: Any, fetch: Callable[[str], str | None] | None = None) -> None:
    """Check that every file of ``manifest`` is in ``root`` with its size and sha256.

    Args:
        root: the folder (or Hub repo id, with ``fetch``) the manifest describes.
        manifest: ``{relative path: {"size", "sha256"}}``.
        fetch: ``fetch(name) -> local path or None``; by default the file under ``root``.

    Raises:
        UnsafeCheckpointError: a listed path leaves the folder (checked before any file is opened).
        IncompleteCheckpointError: a listed file is missing, or its size or sha256 differs.
    """
    where = str(root)
    manifest = check_manifest_shape(manifest, where)
    local_root = os.path.realpath(root) if fetch is None else None

    def local(name: str) -> str | None:
        path = os.path.join(local_root, name)
        real = os.path.realpath(path)
        if os.path.commonpath([real, local_root]) != local_root:
            raise UnsafeCheckpointError(f"{where}/{name} is a link pointing outside the folder; refusing to read it.")
        return path if os.path.isfile(path) else None

    missing, changed = [], []
    for name, meta in manifest.items():
        path = (fetch or local)(name)
        if path is None:
            missing.append(name)
        elif os.path.getsize(path) != meta["size"] or sha256_file(path) != meta["sha256"]:
            changed.append(name)
    if missing or changed:
        parts = [f"missing: {', '.join(missing)}"] * bool(missing) + [f"changed: {', '.join(changed)}"] * bool(changed)
        raise IncompleteCheckpointError(
            f"{where} is not a complete checkpoint ({'; '.join(parts)}): the files listed in its manifest were not "
            "all saved or uploaded together. Save or push the model again."
        )


def write_config_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """Record the manifest of every file in ``folder`` (but ``config.json`` and ``README.md``) in its
    ``config.json`` under ``"hf_recsys_files"`` and return it. Call it on a folder holding only the model's files."""
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.is_file():
        raise FileNotFoundError(f"{config_path} not found: write_manifest needs a folder written by save_pretrained.")
    manifest = build_manifest(folder)
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config[MANIFEST_KEY] = manifest
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return manifest


def verify_config_manifest(folder: str | os.PathLike) -> dict[str, Any] | None:
    """Verify a local saved model against the manifest in its ``config.json`` (``None``: saved without one)."""
    config = json.loads((Path(folder) / CONFIG_FILE).read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise IncompleteCheckpointError(f"{folder}/{CONFIG_FILE} is not a JSON object; the save is damaged.")
    manifest = config.get(MANIFEST_KEY)
    if manifest is None:
        return None
    verify_manifest(folder, manifest)
    return manifest


_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


def fetch_file(path_or_repo_id: str, filename: str, hub_kwargs: Mapping[str, Any]) -> str | None:
    """A local path to ``filename`` of a saved model (folder or Hub repo, downloaded once), or ``None``."""
    from transformers.utils import cached_file

    return cached_file(
        str(path_or_repo_id),
        filename,
        _raise_exceptions_for_missing_entries=False,
        _raise_exceptions_for_connection_errors=False,
        **{k: v for k, v in hub_kwargs.items() if k in _HUB_KWARGS},
    )


def verify_checkpoint(path_or_repo_id: str | os.PathLike, **hub_kwargs: Any) -> dict[str, dict[str, Any]] | None:
    """Check that a saved model (local folder or Hub repo) holds every file its manifest lists, unchanged.

    Nothing but ``config.json`` is read before the manifest is checked: names leaving the folder are refused, then
    each listed file is fetched and hashed.

    Args:
        path_or_repo_id: a folder or a Hub repo id.
        **hub_kwargs: ``revision``, ``token``, ``cache_dir``, ``subfolder``, ... passed to the download.

    Returns:
        The manifest, or ``None`` for a checkpoint saved without one (nothing can be checked; a debug line says so).

    Raises:
        OSError: there is no ``config.json`` (not a saved model, or a push that never completed).
        IncompleteCheckpointError: a listed file is missing, or its size or sha256 differs; the manifest is malformed.
        UnsafeCheckpointError: the manifest names a file outside the folder.

    Example:
        ```python
        >>> verify_checkpoint("org/my-recommender", revision="v1")  # doctest: +SKIP
        ```
    """
    where = str(path_or_repo_id)
    config_path = fetch_file(where, CONFIG_FILE, hub_kwargs)
    if config_path is None:
        raise OSError(
            f"{where} has no {CONFIG_FILE}: it is not a saved hf-recsys model, or a push to it never completed. "
            "Check the path / repo id and revision, or push the model again."
        )
    try:
        config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IncompleteCheckpointError(f"{where}/{CONFIG_FILE} is not valid JSON ({exc}); save it again.") from None
    manifest = config.get(MANIFEST_KEY) if isinstance(config, dict) else None
    if manifest is None:
        logger.debug("%s was saved without a file manifest; its completeness cannot be checked.", where)
        return None
    local = os.path.join(where, hub_kwargs.get("subfolder") or "")
    if os.path.isdir(local):
        verify_manifest(local, manifest)
    else:
        verify_manifest(where, manifest, fetch=lambda name: fetch_file(where, safe_member(where, name), hub_kwargs))
    return manifest


# ---------------------------------------------------------------------------------------------- atomic swap
def _staging(target: Path) -> tuple[Path, Path]:
    return target.parent / f".{target.name}{_NEW}", target.parent / f".{target.name}{_OLD}"


def staging_path(target: str | os.PathLike) -> Path:
    """The hidden staging folder of a save of ``target`` (``.<name>.hfrs-new`` beside it)."""
    return _staging(Path(os.path.abspath(target)))[0]


def _model_entries(target: Path) -> set[str]:
    """Top-level names of ``target`` that belong to the model saved there (from its manifest, else by name)."""
    names = {n for n in os.listdir(target) if any(fnmatch(n, p) for p in _MODEL_PATTERNS)}
    try:
        manifest = json.loads((target / CONFIG_FILE).read_text(encoding="utf-8")).get(MANIFEST_KEY) or {}
        names |= {PurePosixPath(k).parts[0] for k in manifest if isinstance(k, str) and k}
    except (OSError, ValueError, AttributeError):
        pass
    return names


def interrupted_save(target: str | os.PathLike) -> bool:
    """Whether a save of ``target`` was interrupted (its staging or old folder is still there)."""
    new, old = _staging(Path(os.path.abspath(target)))
    return new.is_dir() or old.is_dir()


def saved_model_type(path: str | os.PathLike, hub: Mapping[str, Any]) -> str:
    """The ``model_type`` in the ``config.json`` of a local folder or Hub repo, after :func:`recover_if_interrupted`.

    Raises:
        ValueError: the config has no ``model_type`` (not saved by hf-recsys or transformers).
    """
    from transformers import PreTrainedConfig

    recover_if_interrupted(path, hub.get("subfolder"))  # a save killed in this folder is finished or undone first
    config_dict, _ = PreTrainedConfig.get_config_dict(str(path), **hub)
    if not config_dict.get("model_type"):
        raise ValueError(f"{path}: config.json has no 'model_type'; it was not saved by hf-recsys or transformers.")
    return config_dict["model_type"]


def recover_if_interrupted(path: str | os.PathLike, subfolder: str | None = None) -> None:
    """Before loading a local folder: finish or undo a save of it that was interrupted (:func:`recover_save`)."""
    local = os.path.join(str(path), subfolder or "")
    if os.path.isdir(local) or interrupted_save(local):
        recover_save(local)


def recover_save(target: str | os.PathLike) -> None:
    """Finish or undo a save of ``target`` that was interrupted (killed process, power loss).

    A complete staged folder (it has the marker) is swapped in; an incomplete one is removed (the old folder is
    intact); a leftover old folder is removed once the new one is in place, or put back if it is the only copy.
    """
    target = Path(target)
    new, old = _staging(target)
    if new.is_dir():
        marker = new / STAGED_MARKER
        if marker.is_file():
            logger.warning("Finishing the interrupted save of %s (a complete new version was staged).", target)
            _swap(target, new, old, json.loads(marker.read_text(encoding="utf-8")))
        else:
            logger.warning("Removing an incomplete save of %s (%s); the previous version is kept.", target, new)
            shutil.rmtree(new, ignore_errors=True)
    if old.exists():
        if target.exists():
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(old, target)
    if target.is_dir():
        (target / STAGED_MARKER).unlink(missing_ok=True)


def _swap(target: Path, new: Path, old: Path, keep: list[str]) -> None:
    """Move ``keep`` from ``target`` into ``new``, then rename ``target`` away and ``new`` into place."""
    if target.is_dir():
        for name in keep:
            if (target / name).exists() or (target / name).is_symlink():
                os.replace(target / name, new / name)
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(new, target)
    fsync_dir(target.parent)
    (target / STAGED_MARKER).unlink(missing_ok=True)
    shutil.rmtree(old, ignore_errors=True)


def check_writable_target(target: str | os.PathLike) -> Path:
    """The folder a save writes to, after refusing a target that is a file or writes through a symbolic link.

    Raises:
        UnsafeCheckpointError: ``config.json`` (or the folder's model files) is a symbolic link.
        NotADirectoryError: the target exists and is not a folder.
        ValueError: the target is the current working directory or one of its parents.
    """
    target = Path(os.path.abspath(target))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"Cannot save to {target}: it exists and is not a folder.")
    cwd = os.path.realpath(os.getcwd())
    if target.is_dir() and os.path.commonpath([cwd, os.path.realpath(target)]) == os.path.realpath(target):
        raise ValueError(
            f"Cannot save to {target}: it is (or holds) the current working directory, which an atomic save would "
            "swap away. Save to a sub-folder, e.g. save_pretrained('model')."
        )
    if target.is_dir():
        links = [n for n in _model_entries(target) if (target / n).is_symlink()]
        if links:
            raise UnsafeCheckpointError(
                f"Cannot save to {target}: {', '.join(sorted(links))} is a symbolic link, and a save must not "
                "overwrite what it points to. Remove the link or save to another folder."
            )
    return target


def prepare_staging(target: str | os.PathLike) -> Path:
    """An empty staging folder for a new version of ``target`` (after recovering an interrupted save)."""
    target = check_writable_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover_save(target)
    new, _ = _staging(target)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    return new


def commit_staging(
    target: str | os.PathLike, verify: Callable[[Path], Any] | None = None, keep_foreign: bool = True
) -> None:
    """Publish the staging folder of ``target``: fsync, verify, mark complete, then swap it in.

    Args:
        target: the folder to replace.
        verify: ``verify(staging)`` raises when the staged files are not what was meant to be written.
        keep_foreign: move the target's entries that are not part of its model into the new folder.
    """
    target = Path(os.path.abspath(target))
    new, old = _staging(target)
    fsync_tree(new)
    if verify is not None:
        verify(new)
    keep = []
    if keep_foreign and target.is_dir():
        ours = _model_entries(target) | set(os.listdir(new))
        keep = sorted(n for n in os.listdir(target) if n not in ours and n != STAGED_MARKER)
    marker = new / STAGED_MARKER
    marker.write_text(json.dumps(keep), encoding="utf-8")
    with open(marker, "rb+") as f:
        os.fsync(f.fileno())
    fsync_dir(new)
    _swap(target, new, old, keep)


def abort_staging(target: str | os.PathLike) -> None:
    """Remove the staging folder of ``target`` (a failed save); the target is untouched."""
    new, _ = _staging(Path(os.path.abspath(target)))
    shutil.rmtree(new, ignore_errors=True)


def atomic_save_dir(
    target: str | os.PathLike,
    write: Callable[[Path], None],
    verify: Callable[[Path], Any] | None = None,
    keep_foreign: bool = True,
) -> Path:
    """Write a folder so that ``target`` always holds either its complete old or its complete new contents.

    Args:
        target: the folder to (re)write.
        write: ``write(staging)`` fills an empty staging folder next to ``target``.
        verify: ``verify(staging)`` checks the written files (e.g. :func:`verify_config_manifest`).
        keep_foreign: keep the target's entries that are not part of its model (checkpoints, logs, user files).

    Returns:
        ``target`` as an absolute path.

    Raises:
        SaveError: writing failed (disk full, file-size limit, ...); ``target`` is unchanged.
    """
    target = Path(os.path.abspath(target))
    staging = prepare_staging(target)
    try:
        write(staging)
        commit_staging(target, verify, keep_foreign)
    except (IncompleteCheckpointError, UnsafeCheckpointError):
        abort_staging(target)
        raise
    except Exception as exc:
        abort_staging(target)
        if isinstance(exc, (ValueError, TypeError, NotImplementedError, KeyError)) and not _io_error(exc):
            raise
        raise SaveError(
            f"Saving to {target} failed ({type(exc).__name__}: {exc}); {target} was left as it was. Check the free "
            "disk space and file-size limits, then save again."
        ) from exc
    return target


def _io_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, OSError) or any(w in text for w in ("i/o error", "no space", "file too large", "errno"))


__all__ = [
    "CARD_FILE",
    "CONFIG_FILE",
    "MANIFEST_KEY",
    "IncompleteCheckpointError",
    "SaveError",
    "UnsafeCheckpointError",
    "abort_staging",
    "atomic_save_dir",
    "build_manifest",
    "check_manifest_shape",
    "check_writable_target",
    "commit_staging",
    "fetch_file",
    "file_entry",
    "fsync_dir",
    "fsync_tree",
    "interrupted_save",
    "prepare_staging",
    "recover_if_interrupted",
    "saved_model_type",
    "recover_save",
    "safe_member",
    "sha256_file",
    "staging_path",
    "verify_checkpoint",
    "verify_config_manifest",
    "verify_manifest",
    "write_config_manifest",
]
