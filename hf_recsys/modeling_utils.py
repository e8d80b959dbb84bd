"""``RecPreTrainedModel``, ``RecommenderOutput`` and the recommend contract shared by every hf-recsys model.

Subclasses work in index space and implement a few methods:

- ``score_users(user_idx)`` -> ``(batch, num_items)`` scores for users known at training time (required);
- ``score_histories(histories)`` -> ``(batch, num_items)`` scores from a CSR matrix of item histories, for users
  unseen at training time (optional: set ``supports_history = True``);
- ``item_similarity(item_idx)`` -> ``(batch, num_items)`` (optional, for ``similar_items``);
- ``_fit(interactions)`` for models fitted by a solver (``fit``).

The base class turns those into the public, id-space API: ``recommend``, ``score``, ``score_pairs``,
``similar_items`` and ``fit``, and saves/loads the id vocabularies and the seen-items matrix with the weights.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .configuration_utils import RecConfig
from .data.views import Interactions, build_vocabs, encode_interactions
from .data.vocab import VOCAB_FILE, IdVocab, UnknownIdError, load_vocabs, save_vocabs
from .retrieval.mixin import RetrievalMixin

if TYPE_CHECKING:
    from .training.examples import TrainingExamples

logger = logging.getLogger(__name__)

SEEN_FILE = "seen_items.safetensors"
_HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


@dataclass
class RecommenderOutput(ModelOutput):
    """Output of every hf-recsys model's ``forward``.

    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*): training loss, returned when labels are given.
        scores (`torch.FloatTensor` of shape `(batch_size, num_items)` or `(batch_size,)`): scores over all items,
            or one score per (user, item) pair when items are given.
        user_embeddings (`torch.FloatTensor` of shape `(batch_size, hidden_size)`, *optional*): user
            representations, for models that have them.
        item_embeddings (`torch.FloatTensor` of shape `(num_items or batch_size, hidden_size)`, *optional*): item
            representations, for models that have them.
    """

    loss: torch.FloatTensor | None = None
    scores: torch.FloatTensor | None = None
    user_embeddings: torch.FloatTensor | None = None
    item_embeddings: torch.FloatTensor | None = None


class NotFittedError(RuntimeError):
    """The model has no vocabulary / fitted state yet."""


class RecPreTrainedModel(RetrievalMixin, PreTrainedModel):
    """Base class of every recommender: a ``transformers.PreTrainedModel`` plus the recommend contract.

    Class attributes for subclasses:
        supports_history: ``score_histories`` is implemented (cold users recommended from their history).
        trainable: ``False`` for closed-form / solver-fitted models; their parameters are frozen after init and
            after loading, so a Trainer never updates them.
    """

    config_class = RecConfig
    base_model_prefix = "rec"
    main_input_name = "user_ids"
    supports_history: ClassVar[bool] = False
    trainable: ClassVar[bool] = True
    # losses are means computed by the model itself: transformers.Trainer must not pass num_items_in_batch and skip
    # its division by the gradient-accumulation steps (it would when forward takes **kwargs)
    accepts_loss_kwargs: ClassVar[bool] = False

    def __init__(self, config: RecConfig, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        self.user_vocab: IdVocab | None = None
        self.item_vocab: IdVocab | None = None
        self.seen_items: sp.csr_matrix | None = None

    def _init_weights(self, module: torch.nn.Module) -> None:  # fitted models start from zeros; neural ones override
        pass

    def post_init(self) -> None:
        super().post_init()
        if not self.trainable:
            self.requires_grad_(False)

    # ------------------------------------------------------------------ index-space hooks for subclasses
    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        """Scores of every item for known users, shape ``(len(user_idx), num_items)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement score_users.")

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        """Scores of every item for users given only by their item histories (CSR ``(batch, num_items)``)."""
        raise NotImplementedError(
            f"{type(self).__name__} cannot recommend for users unseen at training time from their history."
        )

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        """Similarity of the given items to every item, shape ``(len(item_idx), num_items)``."""
        raise NotImplementedError(f"{type(self).__name__} does not define item-item similarity.")

    def score_pairs_idx(self, user_idx: torch.LongTensor, item_idx: torch.LongTensor) -> torch.Tensor:
        """One score per (user, item) pair; the default gathers from ``score_users``."""
        out = torch.empty(len(user_idx), dtype=torch.float32, device=user_idx.device)
        uniq, inv = torch.unique(user_idx, return_inverse=True)
        for start in range(0, len(uniq), 1024):
            block = uniq[start : start + 1024]
            scores = self.score_users(block)
            sel = (inv >= start) & (inv < start + len(block))
            out[sel] = scores[inv[sel] - start, item_idx[sel]].float()
        return out

    def _fit(self, interactions: Interactions, **kwargs) -> None:
        raise NotImplementedError(
            f"{type(self).__name__} is trained by gradient descent: use hf_recsys.training, not fit()."
        )

    def training_examples(self, interactions: Interactions, **kwargs) -> TrainingExamples:
        """Prepare the model for gradient training on ``interactions`` and return its examples.

        Gradient-trained families override this: they size their tables for the log, store what they read at
        inference (histories, popularity) and return a :class:`~hf_recsys.training.TrainingExamples` whose
        ``collate(indices, generator)`` builds ``forward`` keyword arguments with a ``loss``. The Accelerate
        trainer (:class:`~hf_recsys.training.RecTrainer`, ``hf-recsys train``) shards these examples over processes.

        Raises:
            NotImplementedError: for models fitted by a solver or by counting (EASE, ItemKNN, ALS, MostPopular):
                use :meth:`fit`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} ({self.config.model_type}) is not trained by gradient descent: fit it with "
            "model.fit(data) or `hf-recsys fit`, not the Accelerate trainer."
        )

    def forward(self, user_ids: torch.LongTensor, **kwargs) -> RecommenderOutput:
        """Scores of every item for the given user indices."""
        return RecommenderOutput(scores=self.score_users(user_ids))

    # ------------------------------------------------------------------ vocabularies and fitted state
    def set_vocabs(self, user_vocab: IdVocab | None, item_vocab: IdVocab | None) -> None:
        """Attach id vocabularies and size the config from them."""
        if user_vocab is not None:
            self.user_vocab = user_vocab
            self.config.num_users = len(user_vocab)
        if item_vocab is not None:
            self.item_vocab = item_vocab
            self.config.num_items = len(item_vocab)

    def _require_vocab(self) -> None:
        if self.user_vocab is None or self.item_vocab is None:
            raise NotFittedError(
                f"{type(self).__name__} has no id vocabulary: fit it first or call set_vocabs(user_vocab, item_vocab)."
            )

    def fit(
        self,
        data: Any,
        user_vocab: IdVocab | None = None,
        item_vocab: IdVocab | None = None,
        show_progress: bool = True,
        **kwargs,
    ) -> RecPreTrainedModel:
        """Fit the model on an interaction log.

        Args:
            data: ``datasets.Dataset`` / pandas DataFrame with canonical columns (``user_id``, ``item_id``,
                optional ``rating``, ``timestamp``), or already-encoded :class:`Interactions`.
            user_vocab, item_vocab: vocabularies to use; by default the model's own, else built from ``data``.
            show_progress: show a progress bar for iterative solvers.
            **kwargs: passed to the model's solver.

        Returns:
            The model itself, fitted.

        Example:
            ```python
            >>> from hf_recsys import MostPopularConfig, MostPopularModel
            >>> from hf_recsys.data import generate_interactions
            >>> log, _ = generate_interactions(num_users=50, num_items=30, num_interactions=500, seed=0)
            >>> model = MostPopularModel(MostPopularConfig()).fit(log)
            >>> ids, scores = model.recommend([log[0]["user_id"]], k=3)
            ```
        """
        if len(data) == 0:
            raise ValueError("Cannot fit on an empty interaction log.")
        if isinstance(data, Interactions):
            self._require_vocab()
            inter = data
        else:
            built_u, built_i = (None, None)
            if (user_vocab or self.user_vocab) is None or (item_vocab or self.item_vocab) is None:
                built_u, built_i = build_vocabs(data)
            self.set_vocabs(user_vocab or self.user_vocab or built_u, item_vocab or self.item_vocab or built_i)
            inter = encode_interactions(data, self.user_vocab, self.item_vocab)
        self.config.num_users, self.config.num_items = inter.num_users, inter.num_items
        self.seen_items = inter.to_csr("binary")
        self._fit(inter, show_progress=show_progress, **kwargs)
        if not self.trainable:
            self.requires_grad_(False)
        return self

    # ------------------------------------------------------------------ the public, id-space API
    def _encode_users(self, users: Sequence[Any]) -> np.ndarray:
        self._require_vocab()
        hint = (
            "Pass histories= to recommend from their item histories."
            if self.supports_history
            else (f"{type(self).__name__} cannot score users unseen at training time.")
        )
        try:
            return self.user_vocab.encode(list(users) if not isinstance(users, np.ndarray) else users)
        except UnknownIdError as exc:
            raise UnknownIdError("user", exc.ids, hint) from None

    def _histories_csr(self, histories: Sequence[Sequence[Any]]) -> sp.csr_matrix:
        lengths = np.array([len(h) for h in histories], dtype=np.int64)
        flat = [i for h in histories for i in h]
        idx = self.item_vocab.encode(flat) if flat else np.zeros(0, dtype=np.int64)
        rows = np.repeat(np.arange(len(histories)), lengths)
        m = sp.csr_matrix((np.ones(len(idx), np.float32), (rows, idx)), shape=(len(histories), self.config.num_items))
        m.sum_duplicates()
        m.data[:] = 1
        return m

    def _batch_scores(self, user_idx: np.ndarray, hists: list | None, exclude_seen: bool) -> torch.Tensor:
        """Scores ``(batch, num_items)``; rows with ``user_idx == -1`` are scored from ``hists`` (cold users)."""
        cold = user_idx < 0
        warm_rows, cold_rows = np.flatnonzero(~cold), np.flatnonzero(cold)
        scores = torch.empty(len(user_idx), self.config.num_items, device=self.device)
        seen_parts = []
        if len(warm_rows):
            idx = torch.as_tensor(user_idx[warm_rows], dtype=torch.long, device=self.device)
            scores[torch.as_tensor(warm_rows, device=self.device)] = self.score_users(idx).float()
            if self.seen_items is not None:
                seen_parts.append((warm_rows, self.seen_items[user_idx[warm_rows]]))
        if len(cold_rows):
            hist = self._histories_csr([hists[j] for j in cold_rows])
            scores[torch.as_tensor(cold_rows, device=self.device)] = self.score_histories(hist).float()
            seen_parts.append((cold_rows, hist))
        if exclude_seen:
            for rows_of, seen in seen_parts:
                rows = rows_of[np.repeat(np.arange(seen.shape[0]), np.diff(seen.indptr))]
                scores[
                    torch.as_tensor(rows, device=self.device), torch.as_tensor(seen.indices, device=self.device)
                ] = -torch.inf
        return scores

    def _split_histories(self, users: Sequence[Any], histories: Any) -> tuple[np.ndarray, list | None]:
        """User indices (-1 for users to score from a history) and the histories aligned with ``users``."""
        if histories is None:
            return self._encode_users(users), None
        if not self.supports_history:
            raise NotImplementedError(f"{type(self).__name__} cannot recommend from item histories.")
        if isinstance(histories, Mapping):
            hists = [histories.get(u) for u in users]
        else:
            hists = list(histories)
            if len(hists) != len(users):
                raise ValueError(f"histories has {len(hists)} entries but {len(users)} users were given.")
        user_idx = np.full(len(users), -1, dtype=np.int64)
        no_hist = [j for j, h in enumerate(hists) if h is None]
        if no_hist:  # users without a given history must be known; they are scored as usual
            user_idx[no_hist] = self._encode_users([users[j] for j in no_hist])
        return user_idx, hists

    @torch.no_grad()
    def recommend(
        self,
        users: Sequence[Any],
        k: int = 10,
        exclude_seen: bool = True,
        items: Sequence[Any] | None = None,
        histories: Mapping[Any, Sequence[Any]] | Sequence[Sequence[Any]] | None = None,
        batch_size: int = 1024,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` items for each user, in the caller's own ids.

        Args:
            users: user ids as in the training log.
            k: number of items per user (capped at the number of candidate items).
            exclude_seen: drop items the user interacted with in training (or in the given history).
            items: restrict the ranking to these candidate item ids.
            histories: item histories for users unseen at training time (a dict ``{user: [item, ...]}``, or a
                list aligned with ``users``); models with ``supports_history`` score those users from it.
            batch_size: users scored at once.

        Returns:
            ``(item_ids, scores)``: arrays of shape ``(len(users), k)``, best first. A score of ``-inf`` marks
            filler where a user has fewer than ``k`` eligible items.

        Example:
            ```python
            >>> ids, scores = model.recommend(["u1", "u2"], k=5)  # doctest: +SKIP
            ```
        """
        self._require_vocab()
        users = list(users) if not isinstance(users, np.ndarray) else users
        user_idx, hists = self._split_histories(users, histories)
        cand = None if items is None else torch.as_tensor(self.item_vocab.encode(list(items)), device=self.device)
        n_cand = self.config.num_items if cand is None else len(cand)
        k = int(min(k, n_cand))
        if k <= 0:
            raise ValueError("recommend needs k >= 1 and at least one candidate item.")
        if (hit := self._index_recommend(user_idx, hists, k, exclude_seen, cand, batch_size)) is not None:
            return self.item_vocab.decode(hit[0]), hit[1]  # through the ANN index (hf_recsys.retrieval)
        out_idx = np.empty((len(users), k), dtype=np.int64)
        out_scores = np.empty((len(users), k), dtype=np.float32)
        for start in range(0, len(users), batch_size):
            sl = slice(start, start + batch_size)
            scores = self._batch_scores(user_idx[sl], hists[sl] if hists is not None else None, exclude_seen)
            if cand is not None:
                scores = scores[:, cand]
            top_s, top_i = torch.topk(scores, k, dim=1)
            if cand is not None:
                top_i = cand[top_i]
            out_idx[sl], out_scores[sl] = top_i.cpu().numpy(), top_s.cpu().numpy()
        return self.item_vocab.decode(out_idx), out_scores

    @torch.no_grad()
    def score(self, users: Sequence[Any], items: Sequence[Any], histories: Any = None) -> np.ndarray:
        """Scores of every given item for every given user: array of shape ``(len(users), len(items))``."""
        self._require_vocab()
        users = list(users) if not isinstance(users, np.ndarray) else users
        user_idx, hists = self._split_histories(users, histories)
        item_idx = torch.as_tensor(self.item_vocab.encode(list(items)), device=self.device)
        scores = self._batch_scores(user_idx, hists, exclude_seen=False)
        return scores[:, item_idx].cpu().numpy()

    @torch.no_grad()
    def score_pairs(self, users: Sequence[Any], items: Sequence[Any]) -> np.ndarray:
        """One score per ``(users[j], items[j])`` pair (e.g. a predicted rating): array of shape ``(n,)``."""
        if len(users) != len(items):
            raise ValueError(f"score_pairs needs as many users as items, got {len(users)} and {len(items)}.")
        u = torch.as_tensor(self._encode_users(users), device=self.device)
        i = torch.as_tensor(self.item_vocab.encode(list(items)), device=self.device)
        return self.score_pairs_idx(u, i).cpu().numpy()

    @torch.no_grad()
    def similar_items(self, items: Sequence[Any], k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items most similar to each given item (the item itself excluded): ``(item_ids, scores)``."""
        self._require_vocab()
        idx = torch.as_tensor(self.item_vocab.encode(list(items)), device=self.device)
        if (hit := self._index_similar(idx, int(min(k, self.config.num_items - 1)))) is not None:
            return hit  # through the ANN index (hf_recsys.retrieval)
        sims = self.item_similarity(idx).float()
        sims[torch.arange(len(idx), device=sims.device), idx] = -torch.inf
        k = int(min(k, self.config.num_items - 1))
        top_s, top_i = torch.topk(sims, k, dim=1)
        return self.item_vocab.decode(top_i.cpu().numpy()), top_s.cpu().numpy()

    # ------------------------------------------------------------------ saving and loading
    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs) -> None:
        """``PreTrainedModel.save_pretrained`` plus the id vocabularies and the seen-items matrix (safetensors)."""
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            self._save_rec_files(save_directory)

    def _save_rec_files(self, save_directory: str | os.PathLike) -> None:
        """Write the id vocabularies, the seen items and, last, the file manifest beside the weights.

        Subclasses that write their weights themselves (e.g. LoRA backbones) call this at the end of their own
        ``save_pretrained``.
        """
        if self.user_vocab is not None or self.item_vocab is not None:
            save_vocabs(save_directory, self.user_vocab, self.item_vocab)
        if self.seen_items is not None:
            m = self.seen_items.tocsr()
            save_file(
                {
                    "indptr": torch.as_tensor(m.indptr.astype(np.int64)),
                    "indices": torch.as_tensor(m.indices.astype(np.int64)),
                    "shape": torch.tensor(m.shape, dtype=torch.int64),
                },
                os.path.join(save_directory, SEEN_FILE),
            )
        self.save_index(save_directory)  # the ANN index, if built (hf_recsys.retrieval)
        from .hub import write_manifest

        write_manifest(save_directory)  # last: lists every file with its sha256 so loading can refuse partial saves

    def push_to_hub(self, repo_id: str, **kwargs):
        """Push the model to the Hub in one commit, with its id vocabulary and a model card.

        See :func:`hf_recsys.hub.push_to_hub` for the arguments (``eval_results``, ``revision``, ``private``,
        ``token``, ``commit_message``, card options).
        """
        from .hub import push_to_hub

        return push_to_hub(self, repo_id, **kwargs)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs):
        """``PreTrainedModel.from_pretrained`` plus the id vocabularies and seen items saved beside the weights."""
        model = super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
        hub = {k: kwargs[k] for k in _HUB_KWARGS if k in kwargs}
        model._load_rec_files(str(pretrained_model_name_or_path), hub)
        if not model.trainable:
            model.requires_grad_(False)
        return model

    def _load_rec_files(self, path: str, hub: dict) -> None:
        from transformers.utils import cached_file

        from .hub import MANIFEST_KEY, verify_checkpoint

        verify_checkpoint(path, **hub)  # every file listed at save time is present and unchanged
        self.config.__dict__.pop(MANIFEST_KEY, None)

        def fetch(name: str) -> str | None:
            return cached_file(
                path,
                name,
                _raise_exceptions_for_missing_entries=False,
                _raise_exceptions_for_connection_errors=False,
                **hub,
            )

        vocab_path = fetch(VOCAB_FILE)
        if vocab_path is not None:
            users, items = load_vocabs(vocab_path)
            for kind, vocab, size in (("user", users, self.config.num_users), ("item", items, self.config.num_items)):
                if vocab is not None and len(vocab) != size:
                    raise ValueError(
                        f"{VOCAB_FILE} in {path} holds {len(vocab)} {kind}s but config.json says num_{kind}s={size}: "
                        "the checkpoint is inconsistent (files from different saves?)."
                    )
            self.user_vocab, self.item_vocab = users, items
        seen_path = fetch(SEEN_FILE)
        if seen_path is not None:
            t = load_file(seen_path)
            shape = tuple(int(x) for x in t["shape"])
            indptr, indices = t["indptr"].numpy(), t["indices"].numpy()
            self.seen_items = sp.csr_matrix((np.ones(len(indices), np.float32), indices, indptr), shape=shape)
        self.load_index(path, **hub)  # the ANN index, if saved (hf_recsys.retrieval)


__all__ = ["NotFittedError", "RecPreTrainedModel", "RecommenderOutput"]
