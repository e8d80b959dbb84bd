"""Configuration of implicit-feedback ALS (Hu, Koren & Volinsky, 2008)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive


class ALSConfig(RecConfig):
    """Configuration of :class:`ALSModel`.

    Args:
        factors: latent dimension.
        regularization: L2 weight ``lambda`` (added unscaled to the normal equations, as in implicit).
        alpha: confidence slope: ``c_ui = 1 + alpha * r_ui`` for observed pairs, 1 elsewhere.
        iterations: alternating sweeps (users then items).
        solver: ``"cg"`` (a few warm-started conjugate-gradient steps per sweep, like implicit's default) or
            ``"cholesky"`` (an exact batched solve per sweep).
        cg_steps: conjugate-gradient steps per sweep.
        feedback: values of ``r_ui``: ``"binary"``, ``"count"`` (interactions per pair) or ``"rating"``.
        seed: seed of the initial factors (uniform in ``[0, 0.01)``, as implicit).
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "als"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        solver: str = "cg",
        cg_steps: int = 3,
        feedback: str = "binary",
        seed: int = 0,
        **kwargs,
    ):
        check_positive(self, "factors", factors)
        check_positive(self, "regularization", regularization, allow_zero=True)
        check_positive(self, "alpha", alpha, allow_zero=True)
        check_positive(self, "iterations", iterations)
        check_choice(self, "solver", solver, ("cg", "cholesky"))
        check_positive(self, "cg_steps", cg_steps)
        check_choice(self, "feedback", feedback, ("binary", "count", "rating"))
        self.factors = int(factors)
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = int(iterations)
        self.solver = solver
        self.cg_steps = int(cg_steps)
        self.feedback = feedback
        self.seed = int(seed)
        super().__init__(**kwargs)


__all__ = ["ALSConfig"]
