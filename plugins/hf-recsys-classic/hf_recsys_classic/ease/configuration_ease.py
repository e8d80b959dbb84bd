"""Configuration of EASE^R (Steck, 2019)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive


class EASEConfig(RecConfig):
    """Configuration of :class:`EASEModel`.

    Args:
        l2: the L2 regularisation ``lambda`` added to the diagonal of the Gram matrix.
        solver_dtype: ``"float32"`` (default: half the memory, about twice as fast) or ``"float64"``.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "ease"

    def __init__(self, l2: float = 500.0, solver_dtype: str = "float32", **kwargs):
        check_positive(self, "l2", l2)
        check_choice(self, "solver_dtype", solver_dtype, ("float32", "float64"))
        self.l2 = float(l2)
        self.solver_dtype = solver_dtype
        super().__init__(**kwargs)


__all__ = ["EASEConfig"]
