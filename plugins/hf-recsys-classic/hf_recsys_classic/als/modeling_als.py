"""Implicit-feedback ALS: weighted matrix factorisation solved by alternating (conjugate-gradient) least squares."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from hf_recsys.data.arrays import unique
from hf_recsys.data.views import Interactions
from hf_recsys.modeling_utils import RecommenderOutput, RecPreTrainedModel
from torch import nn
from tqdm.auto import tqdm

from .._utils import padded_rows, to_torch_csr, torch_threads
from .configuration_als import ALSConfig


class _Confidence:
    """The confidence matrix ``C`` (rows = the side being solved) in the forms the solvers need."""

    def __init__(self, conf: sp.csr_matrix):
        conf = conf.tocsr()
        conf.sort_indices()
        self.shape = conf.shape
        self.c = to_torch_csr(conf)  # values c_ui
        self.crow, self.col = self.c.crow_indices(), self.c.col_indices()
        self.c_minus_1 = self.c.values() - 1.0
        self.pattern = torch.sparse_csr_tensor(
            self.crow, self.col, torch.ones_like(self.c_minus_1), size=conf.shape, check_invariants=False
        )

    def apply(self, x: torch.Tensor, other: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
        """``A_u x_u`` for every row: ``(other^T other + reg I) x_u + sum_i (c_ui - 1) (y_i . x_u) y_i``."""
        dots = torch.sparse.sampled_addmm(self.pattern, x, other.T, beta=0.0).values()
        weighted = torch.sparse_csr_tensor(
            self.crow, self.col, dots * self.c_minus_1, size=self.shape, check_invariants=False
        )
        return x @ gram + weighted @ other


def solve_cg(conf: _Confidence, x: torch.Tensor, other: torch.Tensor, reg: float, steps: int) -> torch.Tensor:
    """``steps`` conjugate-gradient steps on every row's normal equations, warm-started at ``x`` (batched)."""
    gram = other.T @ other + reg * torch.eye(other.shape[1], dtype=other.dtype)
    x = x.clone()
    r = conf.c @ other - conf.apply(x, other, gram)
    p = r.clone()
    rs_old = (r * r).sum(1)
    for _ in range(steps):
        active = rs_old > 1e-20
        if not bool(active.any()):
            break
        ap = conf.apply(p, other, gram)
        step = torch.where(active, rs_old / (p * ap).sum(1).clamp_min(1e-30), torch.zeros_like(rs_old))
        x.addcmul_(step[:, None], p)
        r.addcmul_(step[:, None], ap, value=-1.0)
        rs_new = (r * r).sum(1)
        p = r + torch.where(active, rs_new / rs_old.clamp_min(1e-30), torch.zeros_like(rs_new))[:, None] * p
        rs_old = rs_new
    return x


def _length_chunks(
    lengths: np.ndarray, max_cells: int, growth: float = 1.25, max_rows: int = 4096
) -> list[np.ndarray]:
    """Rows grouped by length for padded batches: lengths within a factor ``growth`` of each other (so padding
    wastes under ``growth - 1`` of the cells), each group split to at most ``max_cells`` padded cells and
    ``max_rows`` rows (each row also holds an ``f x f`` matrix)."""
    order = np.argsort(lengths, kind="stable")
    sorted_len = np.maximum(lengths[order], 1)
    bucket = np.floor(np.log(sorted_len) / np.log(growth)).astype(np.int64)
    bounds = np.r_[0, np.flatnonzero(np.diff(bucket)) + 1, len(order)]
    chunks = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        step = max(1, min(max_rows, max_cells // int(sorted_len[hi - 1])))
        chunks += [order[s : min(s + step, hi)] for s in range(lo, hi, step)]
    return chunks


def solve_exact(conf: sp.csr_matrix, other: torch.Tensor, reg: float, max_cells: int = 4_000_000) -> torch.Tensor:
    """Exact per-row solutions ``(Y^T C_u Y + reg I)^-1 Y^T C_u 1``, batched over rows of similar length (within
    25%, so that the padded products waste little: on 436 items of ml-latest-small, 5x fewer cells than one batch)
    with a batched Cholesky factorisation per batch."""
    conf = conf.tocsr()
    n, f = conf.shape[0], other.shape[1]
    base = other.T @ other + reg * torch.eye(f, dtype=other.dtype)
    out = torch.zeros(n, f, dtype=other.dtype)
    for rows in _length_chunks(np.diff(conf.indptr), max_cells):
        idx, val, mask = padded_rows(conf[rows])
        emb = other[idx]  # (b, L, f)
        a = torch.baddbmm(base, (emb * ((val - 1.0) * mask).unsqueeze(-1)).transpose(1, 2), emb)
        b = (emb * (val * mask).unsqueeze(-1)).sum(1)
        out[torch.from_numpy(rows)] = torch.cholesky_solve(b.unsqueeze(-1), torch.linalg.cholesky(a)).squeeze(-1)
    return out


def _grown(table: torch.Tensor, rows: int) -> torch.Tensor:
    """A copy of ``table`` (on the CPU) with zero rows appended up to ``rows``."""
    out = torch.zeros(max(len(table), rows), table.shape[1], dtype=table.dtype)
    out[: len(table)] = table.detach().cpu()
    return out


class ALSPreTrainedModel(RecPreTrainedModel):
    config_class = ALSConfig
    base_model_prefix = "als"
    supports_history = True
    trainable = False


class ALSModel(ALSPreTrainedModel):
    """Implicit-feedback ALS (Hu, Koren & Volinsky, ICDM 2008) with confidence ``c_ui = 1 + alpha r_ui``.

    Each sweep solves the users' then the items' weighted ridge regressions, batched in torch: by warm-started
    conjugate gradient (``solver="cg"``, the default, as in implicit) or by exact batched Cholesky solves. A user
    unseen at fit time is folded in by one exact least-squares solve against the item factors.

    Example:
        ```python
        >>> from hf_recsys_classic import ALSConfig, ALSModel
        >>> from hf_recsys.testing_utils import tiny_log
        >>> model = ALSModel(ALSConfig(factors=8, iterations=5)).fit(tiny_log(), show_progress=False)
        >>> ids, scores = model.recommend(["new"], k=3, histories={"new": [7, 27]})
        ```
    """

    def __init__(self, config: ALSConfig):
        super().__init__(config)
        self.user_factors = nn.Parameter(torch.zeros(config.num_users, config.factors), requires_grad=False)
        self.item_factors = nn.Parameter(torch.zeros(config.num_items, config.factors), requires_grad=False)
        self.post_init()

    def confidence(self, values: sp.csr_matrix) -> sp.csr_matrix:
        """``1 + alpha r`` on the observed pairs of a CSR matrix of feedback values."""
        conf = values.tocsr().astype(np.float32, copy=True)
        conf.data = 1.0 + self.config.alpha * conf.data
        return conf

    def _fit(
        self, interactions: Interactions, show_progress: bool = True, num_threads: int | None = 1, **kwargs
    ) -> None:
        """Alternate the sweeps with ``num_threads`` torch threads (``None``: torch's setting). One thread is the
        default: the batched CG works on many small products, and on a shared 2-core machine torch's 2 threads
        made it 3-13x slower than one (benchmarks/classic/speed.md)."""
        with torch_threads(num_threads):
            self._solve(interactions, show_progress)

    def _solve(self, interactions: Interactions, show_progress: bool) -> None:
        cfg = self.config
        cui = self.confidence(interactions.to_csr(cfg.feedback))
        ciu = cui.T.tocsr()
        gen = torch.Generator().manual_seed(cfg.seed)
        users = torch.rand(cfg.num_users, cfg.factors, generator=gen) * 0.01
        items = torch.rand(cfg.num_items, cfg.factors, generator=gen) * 0.01
        if cfg.solver == "cg":
            c_users, c_items = _Confidence(cui), _Confidence(ciu)
        for _ in tqdm(range(cfg.iterations), desc="ALS", disable=not show_progress):
            if cfg.solver == "cg":
                users = solve_cg(c_users, users, items, cfg.regularization, cfg.cg_steps)
                items = solve_cg(c_items, items, users, cfg.regularization, cfg.cg_steps)
            else:
                users = solve_exact(cui, items, cfg.regularization)
                items = solve_exact(ciu, users, cfg.regularization)
        self.user_factors = nn.Parameter(users, requires_grad=False)
        self.item_factors = nn.Parameter(items, requires_grad=False)
        # the values partial_fit updates (kept in memory only; binary feedback reads the seen items)
        self.feedback_values = None if cfg.feedback == "binary" else interactions.to_csr(cfg.feedback)

    # ------------------------------------------------------------------ online updates
    def partial_fit_users(self, user_idx: np.ndarray, user_items: sp.csr_matrix) -> None:
        """As implicit's ``partial_fit_users``: the factors of ``user_idx`` become the exact least-squares solution
        for the rows of feedback values ``user_items`` (one per user, replacing what they had), the items fixed;
        the table grows (zero rows) for indices past its end."""
        self.user_factors = self._solved_rows(self.user_factors, user_idx, user_items, self.item_factors)

    def partial_fit_items(self, item_idx: np.ndarray, item_users: sp.csr_matrix) -> None:
        """As implicit's ``partial_fit_items``: exact solves of the given items' factors from their rows of
        ``item_users`` (users x values), the users fixed."""
        self.item_factors = self._solved_rows(self.item_factors, item_idx, item_users, self.user_factors)

    def _solved_rows(self, table, idx, values: sp.csr_matrix, other) -> nn.Parameter:
        idx = np.asarray(idx, dtype=np.int64)
        if len(idx) != values.shape[0]:
            raise ValueError(f"partial_fit needs one row of values per index, got {values.shape[0]} for {len(idx)}.")
        from hf_recsys.online import pad_csr

        other = other.detach().cpu()
        conf = self.confidence(pad_csr(values, (len(idx), len(other))))
        solved = solve_exact(conf, other, self.config.regularization)
        grown = _grown(table, int(idx.max()) + 1 if len(idx) else 0)
        grown[torch.from_numpy(idx)] = solved.to(grown.dtype)
        return nn.Parameter(grown.to(self.device), requires_grad=False)

    def _partial_fit(self, interactions: Interactions, seen_before=None, show_progress: bool = False) -> None:
        """``partial_fit``: exact solves of the touched users (the items fixed), then of the touched items (the
        users fixed), from their whole rows of feedback values; new rows start at zero. Cost: one solve of the
        ``f x f`` normal equations per touched row, against ``iterations`` sweeps over every row for a refit.

        The values are the seen items (binary feedback); ``feedback="count"`` / ``"rating"`` need values the model
        keeps only in memory after ``fit`` (``feedback_values``): a loaded model refuses with a clear error."""
        values = self._updated_feedback(interactions)
        users, items = unique(interactions.user_idx), unique(interactions.known().item_idx)
        self.item_factors = nn.Parameter(_grown(self.item_factors, self.config.num_items), requires_grad=False)
        self.partial_fit_users(users, values[users])
        self.partial_fit_items(items, values.T.tocsr()[items])

    def _updated_feedback(self, interactions: Interactions) -> sp.csr_matrix:
        cfg = self.config
        if cfg.feedback == "binary":
            return self.seen_items
        old = getattr(self, "feedback_values", None)
        if old is None:
            raise ValueError(
                f"ALS(feedback={cfg.feedback!r}).partial_fit needs the fitted log's feedback values, which are not "
                "saved with the model: refit it (fit keeps them in memory), or use feedback='binary'."
            )
        from hf_recsys.online import pad_csr

        new = interactions.to_csr(cfg.feedback)
        old = pad_csr(old, new.shape)
        if cfg.feedback == "count":
            merged = old + new
        else:  # the newest rating of a pair wins
            merged = old - old.multiply(new != 0) + new
        self.feedback_values = merged.tocsr()
        return self.feedback_values

    def score_users(self, user_idx: torch.LongTensor) -> torch.Tensor:
        return self.user_factors[user_idx] @ self.item_factors.T

    def score_pairs_idx(self, user_idx: torch.LongTensor, item_idx: torch.LongTensor) -> torch.Tensor:
        return (self.user_factors[user_idx] * self.item_factors[item_idx]).sum(-1)

    def fold_in(self, histories: sp.csr_matrix) -> torch.Tensor:
        """User factors for histories (CSR of feedback values; 1 for a plain item list): one exact solve each."""
        items = self.item_factors.detach().cpu()
        return solve_exact(self.confidence(histories), items, self.config.regularization).to(self.device)

    def score_histories(self, histories: sp.csr_matrix) -> torch.Tensor:
        return self.fold_in(histories) @ self.item_factors.T

    def item_similarity(self, item_idx: torch.LongTensor) -> torch.Tensor:
        emb = nn.functional.normalize(self.item_factors, dim=-1)
        return emb[item_idx] @ emb.T

    def forward(self, user_ids: torch.LongTensor, item_ids: torch.LongTensor | None = None, **kwargs):
        """Scores of every item (or of the given items, one per user) for the given user indices."""
        if item_ids is None:
            return RecommenderOutput(scores=self.score_users(user_ids), user_embeddings=self.user_factors[user_ids])
        return RecommenderOutput(scores=self.score_pairs_idx(user_ids, item_ids))


__all__ = ["ALSModel", "ALSPreTrainedModel", "solve_cg", "solve_exact"]
