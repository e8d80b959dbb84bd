"""BPR matrix factorisation: pairwise ranking loss on (user, positive, sampled negative) triples."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecommenderOutput, RecPreTrainedModel
from hf_recsys.training.engine import resize_embedding
from hf_recsys.training.examples import TrainingExamples
from torch.nn import functional as F

from .._utils import SGDFactorMixin, padded_rows, positive_pairs, shrink_rows, uniform_negatives
from . import _kernel
from .configuration_bprmf import BPRMFConfig


class NegativeSampler:
    """Samples negative items for users, redrawing (a few times) those the user interacted with in training.

    Membership is a lookup in a dense user x item bit table when it is small (``dense_limit`` cells; ml-1m needs
    21M), else a binary search over the sorted ``user * num_items + item`` keys. The clashing draws (few) are
    redrawn ``redraws`` times at once, and the first redraw that is not a positive is kept. With numba (the ``fast``
    extra) the bit table's checks run as compiled loops over a copy packed eight pairs a byte."""

    dense_limit = 1 << 26

    def __init__(self, positives: sp.csr_matrix, popularity: bool = False, redraws: int = 3):
        coo = positives.tocoo()
        self.num_items = positives.shape[1]
        keys = coo.row.astype(np.int64) * self.num_items + coo.col
        self.dense = self.keys = self._packed = None
        if positives.shape[0] * self.num_items <= self.dense_limit:
            self.dense = torch.zeros(positives.shape[0] * self.num_items, dtype=torch.bool)
            self.dense[torch.from_numpy(keys)] = True
        else:
            self.keys = torch.from_numpy(np.sort(keys))
        counts = np.bincount(coo.col, minlength=self.num_items).astype(np.float32)
        self.popularity = torch.from_numpy(counts) if popularity else None
        self.redraws = redraws

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Whether each (user, item) pair (tensors of one shape) is a training positive."""
        keys = (users * self.num_items + items).reshape(-1)
        if self.dense is not None:
            return self.dense.index_select(0, keys).view(items.shape)
        if not len(self.keys):
            return torch.zeros_like(items, dtype=torch.bool)
        pos = torch.searchsorted(self.keys, keys).clamp_max(len(self.keys) - 1)
        return (self.keys.index_select(0, pos) == keys).view(items.shape)

    def sample(self, users: torch.Tensor, generator: torch.Generator) -> torch.LongTensor:
        """One negative item per entry of ``users``; a draw that is one of the user's positives is replaced by the
        first of ``redraws`` further draws that is not (the last one when none is), drawn together. With numba and
        the bit table, the checks and the choice are compiled loops (the same draws and picks as the torch
        operations)."""
        negs = uniform_negatives(len(users), self.num_items, generator, self.popularity)
        if self.dense is not None and _kernel.available() and users.device.type == "cpu":
            return self._sample_compiled(users, negs, generator)
        todo = self.is_positive(users, negs).nonzero().view(-1)  # the first check over the whole batch, no gather
        if len(todo) and self.redraws:
            fresh = uniform_negatives(self.redraws * len(todo), self.num_items, generator, self.popularity)
            fresh = fresh.view(self.redraws, len(todo))
            clash = self.is_positive(users.index_select(0, todo).expand_as(fresh), fresh)
            pick = fresh[-1]  # the last redraw stays when all clash
            for r in range(self.redraws - 2, -1, -1):
                pick = torch.where(clash[r], pick, fresh[r])
            negs[todo] = pick
        return negs

    def _sample_compiled(self, users: torch.Tensor, negs: torch.LongTensor, generator: torch.Generator):
        """:meth:`sample` after the first draws ``negs``, with the bit table read by numba loops."""
        clashes, redraw = _kernel.sampler_functions()
        if self._packed is None:  # the bit table packed 8 pairs a byte for the compiled loops (1/8 of its memory)
            self._packed = np.packbits(self.dense.numpy(), bitorder="little")
        bits, u, n = self._packed, users.numpy(), negs.numpy()  # views: ``negs`` is filled in place
        todo = np.empty(len(n), dtype=np.int64)
        todo = todo[: clashes(bits, u, n, self.num_items, todo)]
        if len(todo) and self.redraws:
            fresh = uniform_negatives(self.redraws * len(todo), self.num_items, generator, self.popularity)
            redraw(bits, u, n, todo, fresh.view(self.redraws, len(todo)).numpy(), self.num_items)
        return negs


class BPRMFPreTrainedModel(RecPreTrainedModel):
    config_class = BPRMFConfig
    base_model_prefix = "bprmf"
    supports_history = True


class BPRMFModel(SGDFactorMixin, BPRMFPreTrainedModel):
    """Matrix factorisation trained with Bayesian personalised ranking (Rendle et al., UAI 2009).

    ``score(u, i) = p_u . q_i + b_i``. ``forward(user_ids, item_ids, neg_item_ids)`` returns the BPR loss
    ``-log sigmoid(score(u, i) - score(u, j))`` plus L2; :meth:`fit` (the training engine) goes over the positive
    pairs with freshly sampled negatives each step, by per-triple SGD (``optimizer="sgd"``, the ``sgd_step`` hook:
    one compiled numba loop over the triples when numba is installed, else vectorised torch operations; see
    ``sgd_kernel``) or autograd and a torch optimiser. A user unseen
    at fit time gets a vector from ``fold_in_steps`` gradient steps of the same loss on their history.

    Example:
        ```python
        >>> from hf_recsys_classic import BPRMFConfig, BPRMFModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = BPRMFModel(BPRMFConfig(factors=8, epochs=5)).fit(tiny_log(), show_progress=False)
        >>> ids, scores = model.recommend(["u1"], k=3)
        ```
    """

    def __init__(self, config: BPRMFConfig):
        super().__init__(config)
        self.user_embeddings = self.item_embeddings = self.item_biases = None
        self.resize_tables(config.num_users, config.num_items)
        self.post_init()

    def resize_tables(self, num_users: int, num_items: int, mean_resizing: bool = False) -> None:
        """The engine's resize hook: user and item tables for the vocabularies. Known rows are kept; new embeddings
        start from N(0, ``init_std``) and new biases at 0 (or the mean of the known rows with ``mean_resizing``)."""
        self.config.num_users, self.config.num_items = num_users, num_items
        f, std = self.config.factors, self.config.init_std
        normal = lambda t: t.normal_(0.0, std)  # noqa: E731
        self.user_embeddings = resize_embedding(self.user_embeddings, num_users, f, normal, mean_resizing)
        self.item_embeddings = resize_embedding(self.item_embeddings, num_items, f, normal, mean_resizing)
        self.item_biases = resize_embedding(self.item_biases, num_items, 1, torch.nn.init.zeros_, mean_resizing)

    def _item_side(self, item_ids: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if item_ids is None:
            emb, bias = self.item_embeddings.weight, self.item_biases.weight.squeeze(-1)
        else:
            emb, bias = self.item_embeddings(item_ids), self.item_biases(item_ids).squeeze(-1)
        return emb, (bias if self.config.item_bias else torch.zeros_like(bias))

    def forward(
        self,
        user_ids: torch.LongTensor,
        item_ids: torch.LongTensor | None = None,
        neg_item_ids: torch.LongTensor | None = None,
        labels: torch.Tensor | None = None,
        **kwargs,
    ) -> RecommenderOutput:
        """Scores, and the BPR loss when ``neg_item_ids`` are given.

        Args:
            user_ids: ``(batch,)`` user indices.
            item_ids: ``(batch,)`` positive item indices; ``None`` scores every item.
            neg_item_ids: ``(batch,)`` sampled negative items; with them the output holds the loss.
            labels: unused (BPR needs no labels); accepted for trainer compatibility.

        Returns:
            :class:`RecommenderOutput` with ``scores`` ``(batch,)`` (or ``(batch, num_items)``), ``loss`` when
            negatives are given, and ``user_embeddings``.
        """
        users = self.user_embeddings(user_ids)
        if item_ids is None:
            emb, bias = self._item_side()
            return RecommenderOutput(scores=users @ emb.T + bias, user_embeddings=users)
        pos_emb, pos_bias = self._item_side(item_ids)
        pos = (users * pos_emb).sum(-1) + pos_bias
        loss = None
        if neg_item_ids is not None:
            neg_emb, neg_bias = self._item_side(neg_item_ids)
            neg = (users * neg_emb).sum(-1) + neg_bias
            l2 = users.square().sum(-1) + pos_emb.square().sum(-1) + neg_emb.square().sum(-1)
            l2 = l2 + pos_bias.square() + neg_bias.square()
            loss = F.softplus(neg - pos).mean() + self.config.regularization * l2.mean()
        return RecommenderOutput(loss=loss, scores=pos, user_embeddings=users)

    def training_examples(self, interactions: Interactions, **kwargs) -> TrainingExamples:
        """One example per positive (user, item) pair; each batch draws a fresh negative item per pair from the
        generator (uniform or by popularity, redrawn when it is one of the user's positives). Sizes the tables to
        the log (``resize_tables``)."""
        cfg = self.config
        self.resize_tables(interactions.num_users, interactions.num_items)
        users, items, positives = positive_pairs(interactions)
        sampler = NegativeSampler(positives, popularity=cfg.negative_sampling == "popularity")

        def collate(sel: torch.LongTensor, gen: torch.Generator) -> dict:
            sel = sel.cpu()
            u = users.index_select(0, sel)
            return {"user_ids": u, "item_ids": items.index_select(0, sel), "neg_item_ids": sampler.sample(u, gen)}

        return TrainingExamples(len(users), collate, unit="pair")

    @torch.no_grad()
    def sgd_step(
        self, learning_rate: float, user_ids: torch.Tensor, item_ids: torch.Tensor, neg_item_ids: torch.Tensor
    ) -> float:
        """The engine's SGD hook: one minibatch of per-triple SGD (as implicit's BPR, but vectorised): every triple
        moves its rows by ``learning_rate`` times its own gradient of
        ``-log sigmoid(x_uij) + regularization * ||theta||^2``, all taken at the rows' values before the step;
        updates of a row that occurs several times in the batch add up.

        The L2 terms of a row add up to ``-2 * regularization * learning_rate * count * row`` (``count``: its
        occurrences in the batch), so on a table with no more rows than twice the batch they are applied as one
        in-place scaling of the table (:func:`shrink_rows`) instead of being carried through the gathered rows and
        the scatter; larger tables take them per triple. Returns the batch's mean BPR loss."""
        cfg, lr, n = self.config, learning_rate, len(item_ids)
        users, items, biases = self.user_embeddings.weight, self.item_embeddings.weight, self.item_biases.weight
        biases = biases.view(-1)
        kernel = self._compiled_kernel(users, items)
        if kernel is not None:
            return kernel.step(users, items, biases, user_ids, item_ids, neg_item_ids, lr, cfg.regularization,
                               cfg.item_bias)  # fmt: skip
        rate = 2.0 * cfg.regularization * lr
        both = torch.cat([item_ids, neg_item_ids])
        pu = users.index_select(0, user_ids)
        q = items.index_select(0, both)  # rows of i then j: one gather, one scatter
        # with the table scaling, q_i is not needed after the difference: it is taken in place (no new tensor)
        per_triple = items.shape[0] > 2 * len(both)
        diff = q[:n] - q[n:] if per_triple else q[:n].sub_(q[n:])
        x = torch.linalg.vecdot(pu, diff)
        if cfg.item_bias:
            b = biases.index_select(0, both)
            x += b[:n] - b[n:]
        zl = torch.sigmoid(x.neg()).mul_(lr)[:, None]  # -d(loss)/dx, times the learning rate
        # the user rows: zl * (q_i - q_j) - rate * p_u per triple
        step_u = diff.mul_(zl)
        if shrink_rows(users, user_ids, rate) is None:
            step_u.sub_(pu, alpha=rate)
        users.scatter_add_(0, user_ids[:, None].expand_as(step_u), step_u)  # about 4x faster than index_add_ here
        # the item rows: +-zl * p_u - rate * q per triple, written into q (a gathered copy)
        if per_triple:
            zp = pu.mul_(zl)
            q.mul_(-rate)
            q[:n].add_(zp)
            q[n:].sub_(zp)
            scale = None
        else:
            scale = shrink_rows(items, both, rate)
            torch.mul(pu, zl, out=q[:n])
            torch.mul(pu, zl.neg(), out=q[n:])
        items.scatter_add_(0, both[:, None].expand_as(q), q)
        if cfg.item_bias:
            if scale is None:
                b.mul_(-rate)
            else:
                biases.mul_(scale)
                b.zero_()
            zl = zl.view(-1)
            b[:n].add_(zl)
            b[n:].sub_(zl)
            biases.index_add_(0, both, b)
        return float(F.softplus(x.neg_()).mean())

    def _compiled_kernel(self, users: torch.Tensor, items: torch.Tensor):
        """The numba step for these tables under ``sgd_kernel="auto"``/``"numba"``, or ``None`` (torch path)."""
        choice = getattr(self.config, "sgd_kernel", "auto")
        if choice == "torch":
            return None
        kernel = _kernel.kernel_for(self, users, items)
        if kernel is None and choice == "numba":
            if not _kernel.available():
                raise ImportError(
                    'BPRMFConfig(sgd_kernel="numba") needs numba: pip install "hf-recsys-classic[fast]".'
                )
            raise ValueError(
                f'BPRMFConfig(sgd_kernel="numba") runs on float32 CPU tables, these are {users.dtype} on '
                f'{users.device}: use sgd_kernel="torch" or "auto".'
            )
        return kernel

    @torch.enable_grad()
    def fold_in(self, histories: sp.csr_matrix) -> torch.Tensor:
        """User vectors for item histories: ``fold_in_steps`` Adam steps of the BPR loss, items fixed."""
        cfg = self.config
        idx, _, mask = padded_rows(histories)
        idx, mask = idx.to(self.device), mask.to(self.device)
        emb, bias = (t.detach() for t in self._item_side())
        gen = torch.Generator().manual_seed(cfg.seed)
        vec = torch.zeros(len(idx), cfg.factors, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([vec], lr=cfg.fold_in_lr)
        for _ in range(cfg.fold_in_steps):
            negs = torch.randint(cfg.num_items, idx.shape, generator=gen).to(self.device)
            pos = (vec[:, None, :] * emb[idx]).sum(-1) + bias[idx]
            neg = (vec[:, None, :] * emb[negs]).sum(-1) + bias[negs]
            loss = (F.softplus(neg - pos) * mask).sum() / mask.sum().clamp_min(1.0)
            loss = loss + cfg.regularization * vec.square().sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return vec.detach()

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        emb, bias = self._item_side()
        return self.fold_in(histories) @ emb.T + bias


__all__ = ["BPRMFModel", "BPRMFPreTrainedModel", "NegativeSampler"]
