"""Configuration of BPR matrix factorisation (Rendle et al., 2009)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive


class BPRMFConfig(RecConfig):
    """Configuration of :class:`BPRMFModel`.

    Args:
        factors: latent dimension.
        learning_rate: step size (per triple for ``"sgd"``).
        regularization: L2 weight on the embeddings (and item biases) of each sampled triple.
        epochs: passes over the positive (user, item) pairs in :meth:`~BPRMFModel.fit`.
        batch_size: triples per minibatch.
        optimizer: ``"sgd"`` (default): the lean path, per-triple SGD as in implicit's BPR, vectorised over each
            minibatch with closed-form gradients and in-place row updates; ``"adam"``, ``"adamw"`` or
            ``"adagrad"``: autograd on :meth:`~BPRMFModel.forward`'s loss with that torch optimiser.
        sgd_kernel: how ``optimizer="sgd"`` runs its step: ``"auto"`` (default: one compiled loop over the triples
            with numba when it is installed, ``pip install "hf-recsys-classic[fast]"``, and the tables are on the
            CPU; else torch), ``"torch"`` (vectorised tensor operations, any device) or ``"numba"`` (an error when
            it cannot run). Both compute the same update.
        sgd_threads: threads the numba step splits each minibatch over (``None``: the cores numba sees, at most 8,
            as implicit's BPR uses every core). Each thread adds its contiguous share of the triples into its own
            accumulators (the tables are only read meanwhile), then the shares are applied in a fixed order: a run
            is reproducible for a given number of threads and differs from another number's only by rounding. Each
            thread holds accumulators as large as the tables. The torch path ignores it.
        negative_sampling: ``"uniform"`` over items, or ``"popularity"`` (in proportion to interaction counts, as
            implicit's BPR samples).
        item_bias: learn a bias per item.
        init_std: standard deviation of the initial embeddings.
        fold_in_steps, fold_in_lr: gradient steps (and their size) on a new user's vector when recommending from
            a history; the item side stays fixed.
        seed: seed of the initialisation and the negative sampling.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "bprmf"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.05,
        regularization: float = 0.01,
        epochs: int = 50,
        batch_size: int = 8192,
        optimizer: str = "sgd",
        sgd_kernel: str = "auto",
        sgd_threads: int | None = None,
        negative_sampling: str = "uniform",
        item_bias: bool = True,
        init_std: float = 0.01,
        fold_in_steps: int = 50,
        fold_in_lr: float = 0.05,
        seed: int = 0,
        **kwargs,
    ):
        for name, value in (("factors", factors), ("learning_rate", learning_rate), ("epochs", epochs)):
            check_positive(self, name, value)
        check_positive(self, "batch_size", batch_size)
        check_positive(self, "regularization", regularization, allow_zero=True)
        check_positive(self, "init_std", init_std)
        check_choice(self, "optimizer", optimizer, ("adam", "adamw", "adagrad", "sgd"))
        check_choice(self, "sgd_kernel", sgd_kernel, ("auto", "torch", "numba"))
        whole = isinstance(sgd_threads, int) and not isinstance(sgd_threads, bool)
        if sgd_threads is not None and not (whole and sgd_threads >= 1):
            raise ValueError(f"BPRMFConfig: sgd_threads must be a positive integer or None, got {sgd_threads!r}.")
        check_choice(self, "negative_sampling", negative_sampling, ("uniform", "popularity"))
        check_positive(self, "fold_in_steps", fold_in_steps)
        check_positive(self, "fold_in_lr", fold_in_lr)
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.sgd_kernel = sgd_kernel
        self.sgd_threads = None if sgd_threads is None else int(sgd_threads)
        self.negative_sampling = negative_sampling
        self.item_bias = bool(item_bias)
        self.init_std = float(init_std)
        self.fold_in_steps = int(fold_in_steps)
        self.fold_in_lr = float(fold_in_lr)
        self.seed = int(seed)
        super().__init__(**kwargs)


__all__ = ["BPRMFConfig"]
