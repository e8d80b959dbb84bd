"""An LLM re-ranker in the spirit of TALLRec: a causal LLM, LoRA-tuned to answer ``Yes`` or ``No`` to "the user
watched these titles; would they enjoy this one?", re-orders the top candidates of any first-stage recommender.

The re-ranker holds its first stage by value (like the fusion models hold their members): ``recommend`` asks the
first stage for each user's ``num_candidates`` best unseen items, scores every (user, candidate) prompt with
``logit(" Yes") - logit(" No")`` at the answer position, and ranks those candidates by it, the remaining items
below them in the first stage's order. Saving writes the first stage into ``first_stage/`` (a complete model of its
own), the item titles, and the LoRA adapter in peft's format; the LLM itself is rebuilt from ``base_model``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ...data.views import Interactions
from ...modeling_utils import RecommenderOutput, RecPreTrainedModel
from ...training.engine import EngineTrainedMixin, autocast_dtype
from ...training.examples import TrainingExamples
from ..backbone_utils import BackboneModelMixin, build_backbone, eval_mode, prepare_backbone
from ..sequential.modeling_sequential import SequentialRecPreTrainedModel, gather_windows, sequences_from_interactions
from .configuration_llm_reranker import LLMRerankerConfig

logger = logging.getLogger(__name__)

FIRST_STAGE_DIR = "first_stage"
ITEM_TEXTS_FILE = "item_texts.json"
#: items outside the re-ranked candidates score ``OUTSIDE_OFFSET - first-stage rank``, below every candidate
OUTSIDE_OFFSET = -1e6


class LLMReranker(EngineTrainedMixin, BackboneModelMixin, RecPreTrainedModel):
    """Re-ranks the top candidates of a first-stage recommender with a LoRA-tuned LLM's yes/no answer.

    Example:
        ```python
        >>> from hf_recsys.models.llm import smollm2_path  # doctest: +SKIP
        >>> reranker = LLMReranker.from_first_stage(ease, backbone_name_or_path=smollm2_path())  # doctest: +SKIP
        >>> reranker.fit(train_log, item_texts=(item_ids, titles))  # doctest: +SKIP
        >>> ids, scores = reranker.recommend(["u1"], k=10)  # doctest: +SKIP
        ```
    """

    config_class = LLMRerankerConfig
    base_model_prefix = "llm_reranker"
    main_input_name = "input_ids"
    #: prompts scored at once at inference
    score_batch_size: int = 32
    #: run each user's prompt prefix once and reuse its key/value cache for all of the user's candidates
    prefix_cache: bool = True

    def __init__(self, config: LLMRerankerConfig):
        super().__init__(config)
        from transformers import AutoModelForCausalLM

        self.register_buffer("user_history", torch.full((config.num_users, config.history_length), -1))
        self.item_texts: list[str] | None = None
        self._tokenizer = None
        first = None
        if config.first_stage is not None:
            from ...auto import AutoModelForRecommendation

            first = AutoModelForRecommendation.for_model(**config.first_stage)
        self.post_init()
        # after post_init: the LM ties its own output and input embeddings; the outer model's tying would look for
        # them under the wrong (peft-wrapped) names
        self.backbone = prepare_backbone(build_backbone(config, auto_class=AutoModelForCausalLM), config)
        self._set_first_stage(first)

    # ------------------------------------------------------------------ the first stage (held by value)
    @classmethod
    def from_first_stage(cls, first_stage: RecPreTrainedModel, **config_kwargs: Any) -> LLMReranker:
        """A re-ranker over an already fitted model (held by value, not copied), sharing its vocabularies.

        Args:
            first_stage: any fitted hf-recsys model.
            **config_kwargs: options of :class:`LLMRerankerConfig` (``backbone_name_or_path``, ...).
        """
        first_stage._require_vocab()
        spec = {"model_type": first_stage.config.model_type}
        cfg = cls.config_class(
            first_stage=spec,
            num_users=first_stage.config.num_users,
            num_items=first_stage.config.num_items,
            **config_kwargs,
        )
        model = cls(cfg)
        model._set_first_stage(first_stage)
        return model

    def _set_first_stage(self, model: RecPreTrainedModel | None) -> None:
        # a plain attribute, not a sub-module: its weights are saved in its own folder, and never trained here
        object.__setattr__(self, "first_stage", model)
        self.supports_history = model is not None and model.supports_history
        if model is not None and model.user_vocab is not None:
            self.set_vocabs(model.user_vocab, model.item_vocab)
            self.seen_items = model.seen_items
            self.resize_tables(model.config.num_users, model.config.num_items)

    def _require_first_stage(self) -> RecPreTrainedModel:
        if self.first_stage is None or self.first_stage.item_vocab is None:
            raise ValueError(
                "LLMReranker has no fitted first stage: build it with LLMReranker.from_first_stage(fitted_model)."
            )
        return self.first_stage

    def to(self, *args, **kwargs):
        if self.first_stage is not None:
            self.first_stage.to(*args, **kwargs)
        return super().to(*args, **kwargs)

    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: history rows for ``num_users`` users (new users start with none)."""
        self.config.num_users, self.config.num_items = num_users, num_items
        old = self.user_history
        if len(old) != num_users:
            new = torch.full((num_users, self.config.history_length), -1, dtype=old.dtype, device=old.device)
            keep = min(len(old), num_users)
            new[:keep] = old[:keep]
            self.user_history = new

    # ------------------------------------------------------------------ text and prompts
    def set_item_texts(self, item_ids, texts) -> None:
        """Titles (or any short text) of items, aligned by the item vocabulary. Items without one are named by their
        id in the prompt (the count is logged)."""
        self._require_vocab()
        if len(item_ids) != len(texts):
            raise ValueError(f"set_item_texts got {len(item_ids)} item ids but {len(texts)} texts.")
        idx = self.item_vocab.encode(list(item_ids), unknown="mask")
        out = [None] * self.config.num_items
        for i, t in zip(idx, texts):
            if i >= 0:
                out[i] = str(t)
        missing = [i for i, t in enumerate(out) if t is None]
        if missing:
            logger.warning("%d of %d items have no text: the prompt names them by id.", len(missing), len(out))
            names = self.item_vocab.decode(np.asarray(missing))
            for i, name in zip(missing, names):
                out[i] = f"item {name}"
        self.item_texts = out

    @property
    def tokenizer(self):
        """The LLM's tokenizer, left-padded (the answer is read at the last position)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            path = self.config.tokenizer_name_or_path or self.config.backbone_name_or_path
            if path is None:
                raise ValueError(
                    "LLMReranker needs a tokenizer: set tokenizer_name_or_path (or backbone_name_or_path)."
                )
            tok = AutoTokenizer.from_pretrained(path)
            tok.padding_side, tok.truncation_side = "left", "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token or tok.unk_token
            self._tokenizer = tok
        return self._tokenizer

    def answer_token_ids(self) -> tuple[int, int]:
        """The first token of ``yes_token`` and of ``no_token``."""
        tok = self.tokenizer
        ids = [tok(t, add_special_tokens=False).input_ids for t in (self.config.yes_token, self.config.no_token)]
        if not ids[0] or not ids[1] or ids[0][0] == ids[1][0]:
            raise ValueError(
                f"yes_token {self.config.yes_token!r} and no_token {self.config.no_token!r} must start with "
                "different tokens of the LLM's vocabulary."
            )
        return ids[0][0], ids[1][0]

    def prompt_parts(self, history: list[int] | np.ndarray, candidate: int) -> tuple[str, str]:
        """The prompt of a history (item indices, oldest first) and a candidate item index, as ``(prefix, suffix)``:
        the template up to ``{candidate}`` (instructions and history, shared by all of a user's candidates) and the
        rest. The two parts are tokenized separately (the prompt's tokens are the prefix's then the suffix's), so that
        scoring can run a user's prefix once and reuse its key/value cache for every candidate."""
        if self.item_texts is None:
            raise ValueError("LLMReranker has no item texts: pass item_texts=(ids, titles) to fit or set_item_texts.")
        titles = "; ".join(self.item_texts[int(i)] for i in history if i >= 0) or "nothing yet"
        template = self.config.prompt_template
        cut = template.index("{candidate}")
        head, tail = template[:cut], template[cut:]
        if "{history}" in tail:  # history after the candidate: no shared prefix
            return "", template.format(history=titles, candidate=self.item_texts[int(candidate)])
        return head.format(history=titles), tail.format(candidate=self.item_texts[int(candidate)])

    def prompt(self, history: list[int] | np.ndarray, candidate: int) -> str:
        """The prompt of a history (item indices, oldest first) and a candidate item index."""
        return "".join(self.prompt_parts(history, candidate))

    def token_ids(self, texts: list[str], prefix: bool) -> list[list[int]]:
        """Token ids of prompt prefixes (with the tokenizer's special tokens) or suffixes (without)."""
        return self.tokenizer(texts, add_special_tokens=prefix).input_ids if texts else []

    def _padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Left-padded ``(input_ids, attention_mask)`` of token id lists."""
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.as_tensor(r)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def tokenize(self, prefixes: list[list[int]], suffixes: list[list[int]]) -> dict[str, torch.Tensor]:
        """A left-padded batch of prompts (prefix tokens then suffix tokens); prompts longer than
        ``max_prompt_length`` tokens lose their beginning."""
        limit = self.config.max_prompt_length
        ids, mask = self._padded([(p + s)[-limit:] for p, s in zip(prefixes, suffixes)])
        return {"input_ids": ids, "attention_mask": mask}

    # ------------------------------------------------------------------ forward and training
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> RecommenderOutput:
        """Yes-minus-no logits of left-padded prompts, and the binary cross-entropy when ``labels`` (1 = the
        candidate is the user's next item, 0 = it is not) are given.

        Returns:
            :class:`RecommenderOutput` with ``scores`` ``(batch,)`` and ``loss``.
        """
        yes, no = self.answer_token_ids()
        logits = self.backbone(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=1).logits[:, -1]
        scores = (logits[:, yes] - logits[:, no]).float()
        loss = None if labels is None else F.binary_cross_entropy_with_logits(scores, labels.float())
        return RecommenderOutput(loss=loss, scores=scores)

    def training_examples(self, interactions: Interactions, item_texts: tuple | None = None) -> TrainingExamples:
        """One positive prompt per user with at least two items (history: the items before the last, candidate:
        the last) and ``num_negatives`` negative prompts whose candidate is drawn from the first stage's top
        ``num_candidates`` unseen items for the user.

        Args:
            item_texts: ``(item_ids, texts)`` item titles (see :meth:`set_item_texts`).
        """
        first = self._require_first_stage()
        if len(first.item_vocab) != interactions.num_items or len(first.user_vocab) != interactions.num_users:
            raise ValueError(
                "LLMReranker trains on the first stage's vocabularies: fit it on the same users and items."
            )
        self.resize_tables(interactions.num_users, interactions.num_items)
        if item_texts is not None:
            self.set_item_texts(*item_texts)
        self.prompt_parts(np.zeros(0, dtype=np.int64), 0)  # fails early without texts
        indptr, items = sequences_from_interactions(interactions)
        starts, ends = indptr[:-1], indptr[1:]
        self.user_history = torch.as_tensor(
            gather_windows(items, starts, ends, self.config.history_length) - 1, device=self.device
        )
        users = np.flatnonzero(ends - starts >= 2)
        hist = gather_windows(items, starts[users], ends[users] - 1, self.config.history_length) - 1
        positives = items[ends[users] - 1]
        pool = self._negative_pool(users)
        per_user = 1 + self.config.num_negatives

        def collate(idx: torch.LongTensor, gen: torch.Generator) -> dict:
            idx = idx.cpu().numpy()
            row, slot = idx // per_user, idx % per_user
            pick = torch.randint(0, pool.shape[1], (len(idx),), generator=gen).numpy()
            candidate = np.where(slot == 0, positives[row], pool[row, pick])
            label = torch.as_tensor((slot == 0).astype(np.float32), device=self.device)
            parts = [self.prompt_parts(hist[r], c) for r, c in zip(row, candidate)]
            pre, suf = self.token_ids([p for p, _ in parts], True), self.token_ids([x for _, x in parts], False)
            return {**self.tokenize(pre, suf), "labels": label}

        return TrainingExamples(len(users) * per_user, collate, unit="prompt")

    def update_histories(self, data) -> None:
        """Replace the histories the prompts name for known users, and the seen items, with those of ``data`` (a
        log in the model's vocabularies), without training: e.g. to score a test period after the re-ranker was
        tuned on a subset of the users."""
        from ...data.views import encode_interactions

        inter = encode_interactions(data, self.user_vocab, self.item_vocab, unknown_items="drop")
        indptr, items = sequences_from_interactions(inter)
        self.user_history = torch.as_tensor(
            gather_windows(items, indptr[:-1], indptr[1:], self.config.history_length) - 1, device=self.device
        )
        self.seen_items = inter.to_csr("binary")

    def partial_fit(self, interactions: Any, item_texts: tuple | None = None, **options: Any) -> LLMReranker:
        """Pass the update to the first stage (``first_stage.partial_fit(interactions, **options)``), take its grown
        vocabularies and seen items, and append each updated user's new items (in time order) to the history the
        prompts name. The LoRA adapter stays as tuned (as a fusion's tuned weights do): refit to tune it on the new
        users' prompts. The log is checked against the re-ranker and the first stage first, so a bad log changes
        neither.

        Args:
            interactions: the new interactions, with the fitted log's columns.
            item_texts: ``(item_ids, texts)`` of the new items (new items without one are named by their id).
            **options: the first stage's update options (e.g. ``epochs`` for a gradient-trained first stage).

        Returns:
            The re-ranker itself.
        """
        from ...data.views import encode_interactions
        from ...online import LOG_SCHEMA_KEY, check_update_log

        first = self._require_first_stage()
        check_update_log(self, interactions)
        check_update_log(first, interactions)
        old_hist = self.user_history.detach().clone()
        first.partial_fit(interactions, **options)
        self._set_first_stage(first)
        self._extend_item_texts(item_texts)
        inter = encode_interactions(interactions, self.user_vocab, self.item_vocab)
        self.user_history = self._appended_histories(old_hist, inter)
        schema = getattr(self.config, LOG_SCHEMA_KEY, None)
        if schema and inter.timestamp is not None and len(inter.timestamp):
            schema["last_timestamp"] = max(int(inter.timestamp.max()), schema.get("last_timestamp") or -(2**62))
        return self

    def _extend_item_texts(self, item_texts: tuple | None) -> None:
        """Item texts for the items added since (from ``item_texts``, else named by id); known items keep theirs."""
        if self.item_texts is None:  # never given: set_item_texts names them all
            return
        old = list(self.item_texts)
        given = {}
        if item_texts is not None:
            ids, texts = item_texts
            if len(ids) != len(texts):
                raise ValueError(f"item_texts got {len(ids)} item ids but {len(texts)} texts.")
            idx = self.item_vocab.encode(list(ids), unknown="mask")
            given = {int(i): str(t) for i, t in zip(idx, texts) if i >= 0}
        new = np.arange(len(old), self.config.num_items)
        missing = [i for i in new if i not in given]
        if missing:
            logger.warning("%d new items have no text: the prompt names them by id.", len(missing))
        names = dict(zip(missing, self.item_vocab.decode(np.asarray(missing, dtype=np.int64)))) if missing else {}
        self.item_texts = [
            given.get(i, old[i] if i < len(old) else f"item {names.get(i)}") for i in range(len(new) + len(old))
        ]

    def _appended_histories(self, old: torch.Tensor, inter: Interactions) -> torch.Tensor:
        """``user_history`` with each user's new items (time order) after their stored ones, the last
        ``history_length`` kept; rows of new users start empty (``-1``)."""
        length = self.config.history_length
        out = torch.full((self.config.num_users, length), -1, dtype=old.dtype)
        out[: len(old)] = old.cpu()
        indptr, items = sequences_from_interactions(inter)
        users = np.flatnonzero(np.diff(indptr))
        combined = np.concatenate([out[torch.as_tensor(users)].numpy(), np.full((len(users), length), -1)], 1)
        new = gather_windows(items, indptr[users], indptr[users + 1], length) - 1
        combined[:, length:] = new
        # stored items, then the new ones, left-aligned to the end: drop the -1 gaps row by row (vectorised)
        order = np.argsort(combined >= 0, axis=1, kind="stable")
        packed = np.take_along_axis(combined, order, axis=1)[:, -length:]
        out[torch.as_tensor(users)] = torch.as_tensor(packed, dtype=old.dtype)
        return out.to(old.device)

    @torch.no_grad()
    def _negative_pool(self, users: np.ndarray) -> np.ndarray:
        """``(len(users), num_candidates)`` item indices: each user's best unseen items by the first stage."""
        first, n = self.first_stage, min(self.config.num_candidates, self.config.num_items)
        out = np.empty((len(users), n), dtype=np.int64)
        for start in range(0, len(users), 1024):
            u = users[start : start + 1024]
            scores = first.score_users(torch.as_tensor(u, device=first.device)).float()
            out[start : start + len(u)] = self._top_candidates(scores, self.seen_items[u], n).cpu().numpy()
        return out

    # ------------------------------------------------------------------ scoring (index space)
    @staticmethod
    def _top_candidates(scores: torch.Tensor, seen: sp.csr_matrix | None, n: int) -> torch.Tensor:
        scores = scores.clone()
        if seen is not None and seen.nnz:
            rows = np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))
            scores[torch.as_tensor(rows), torch.as_tensor(seen.indices.astype(np.int64))] = -torch.inf
        return torch.topk(scores, n, dim=1).indices

    @torch.no_grad()
    def rerank(self, first_scores: torch.Tensor, histories: np.ndarray, seen: sp.csr_matrix | None) -> torch.Tensor:
        """Scores ``(b, num_items)``: the LLM's score for each user's top ``num_candidates`` unseen items by
        ``first_scores``, ``OUTSIDE_OFFSET - first-stage rank`` for every other item."""
        n = min(self.config.num_candidates, self.config.num_items)
        cand = self._top_candidates(first_scores.float(), seen, n)
        order = torch.argsort(first_scores.float(), dim=1, descending=True)
        ranks = torch.empty_like(order)
        ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
        out = OUTSIDE_OFFSET - ranks.float()
        out.scatter_(1, cand, self._llm_scores(histories, cand.cpu().numpy()).to(out.device))
        return out

    def _llm_scores(self, histories: np.ndarray, candidates: np.ndarray) -> torch.Tensor:
        """Yes-minus-no logits ``(b, n)`` of every (history row, candidate) prompt.

        With :attr:`prefix_cache` (the default), each user's prefix (instructions and history) runs once and its
        key/value cache serves all ``n`` candidate suffixes; users whose prompts would be cut by
        ``max_prompt_length``, and templates with the history after the candidate, take the plain path (every prompt
        whole), which gives the same scores up to float rounding.
        """
        b, n = candidates.shape
        parts = [[self.prompt_parts(histories[r], c) for c in candidates[r]] for r in range(b)]
        prefixes = self.token_ids([row[0][0] for row in parts], True)
        suffixes = self.token_ids([s for row in parts for _, s in row], False)
        suffixes = [suffixes[r * n : (r + 1) * n] for r in range(b)]
        limit = self.config.max_prompt_length
        shared = [
            self.prefix_cache and len(prefixes[r]) > 0 and len(prefixes[r]) + max(map(len, suffixes[r])) <= limit
            for r in range(b)
        ]
        dtype = autocast_dtype(self.config.precision, self.device)
        amp = torch.autocast(self.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
        out = torch.empty((b, n), dtype=torch.float32)
        fast, plain = np.flatnonzero(shared), np.flatnonzero(~np.asarray(shared, dtype=bool))
        per_batch = max(1, self.score_batch_size // n)
        with eval_mode(self), torch.no_grad(), amp:
            for start in range(0, len(fast), per_batch):
                rows = fast[start : start + per_batch]
                out[rows] = self._prefix_cached_scores([prefixes[r] for r in rows], [suffixes[r] for r in rows])
            flat = [(r, j) for r in plain for j in range(n)]
            for start in range(0, len(flat), self.score_batch_size):
                chunk = flat[start : start + self.score_batch_size]
                batch = self.tokenize([prefixes[r] for r, _ in chunk], [suffixes[r][j] for r, j in chunk])
                scores = self(**batch).scores.float().cpu()
                for (r, j), v in zip(chunk, scores):
                    out[r, j] = v
        return out

    def _prefix_cached_scores(self, prefixes: list[list[int]], suffixes: list[list[list[int]]]) -> torch.Tensor:
        """Scores ``(len(prefixes), n)``: the left-padded prefixes run once (with explicit positions that skip the
        padding), their key/value cache is repeated for the ``n`` suffixes of each, and only the suffixes run on it."""
        yes, no = self.answer_token_ids()
        n = len(suffixes[0])
        p_ids, p_mask = self._padded(prefixes)
        p_pos = (p_mask.cumsum(1) - 1).clamp(min=0)
        cache = self.backbone(
            input_ids=p_ids, attention_mask=p_mask, position_ids=p_pos, use_cache=True, logits_to_keep=1
        ).cache
        cache.batch_repeat_interleave(n)
        s_ids, s_mask = self._padded([s for row in suffixes for s in row])
        s_pos = p_mask.sum(1).repeat_interleave(n)[:, None] + (s_mask.cumsum(1) - 1).clamp(min=0)
        logits = self.backbone(
            input_ids=s_ids,
            attention_mask=torch.cat([p_mask.repeat_interleave(n, 0), s_mask], 1),
            position_ids=s_pos,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
        return (logits[:, yes] - logits[:, no]).float().cpu().reshape(len(prefixes), n)

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        first = self._require_first_stage()
        scores = first.score_users(user_idx.to(first.device))
        u = user_idx.cpu().numpy()
        seen = None if self.seen_items is None else self.seen_items[u]
        return self.rerank(scores, self.user_history[user_idx].cpu().numpy(), seen)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        """Scores from time-ordered histories (the first stage must accept histories)."""
        first = self._require_first_stage()
        binary = histories.copy()
        binary.sum_duplicates()
        binary.data[:] = 1
        scores = first.score_histories(binary)
        indptr = histories.indptr.astype(np.int64)
        items = histories.indices.astype(np.int64)
        recent = gather_windows(items, indptr[:-1], indptr[1:], self.config.history_length)
        return self.rerank(scores, recent - 1, binary)

    # histories keep their time order (the prompt lists the most recent items)
    _histories_csr = SequentialRecPreTrainedModel._histories_csr

    # ------------------------------------------------------------------ saving and loading
    def _save_extra(self, folder: str | os.PathLike) -> None:
        """Save hook: the first stage in ``first_stage/`` (loadable on its own) and the item texts."""
        if self.first_stage is not None:
            self.first_stage.write_model_files(os.path.join(folder, FIRST_STAGE_DIR))
        if self.item_texts is not None:
            with open(os.path.join(folder, ITEM_TEXTS_FILE), "w", encoding="utf-8") as f:
                json.dump(self.item_texts, f, ensure_ascii=False)

    def _load_extra(self, path: str, hub: dict) -> None:
        """Load hook: the first stage from ``first_stage/`` and the item texts."""
        from ...auto import AutoModelForRecommendation
        from ...serialization import fetch_file

        if self.config.first_stage is not None:
            kept = {k: v for k, v in hub.items() if k in ("cache_dir", "force_download", "local_files_only", "token")}
            if os.path.isdir(path):
                first = AutoModelForRecommendation.from_pretrained(os.path.join(path, FIRST_STAGE_DIR), **kept)
            else:
                first = AutoModelForRecommendation.from_pretrained(path, subfolder=FIRST_STAGE_DIR, **kept)
            user_vocab, item_vocab, seen = self.user_vocab, self.item_vocab, self.seen_items
            self._set_first_stage(first)
            self.set_vocabs(user_vocab or first.user_vocab, item_vocab or first.item_vocab)
            self.seen_items = seen if seen is not None else first.seen_items
        texts = fetch_file(path, ITEM_TEXTS_FILE, hub)
        if texts is not None:
            with open(texts, encoding="utf-8") as f:
                self.item_texts = json.load(f)


__all__ = ["FIRST_STAGE_DIR", "ITEM_TEXTS_FILE", "LLMReranker"]
