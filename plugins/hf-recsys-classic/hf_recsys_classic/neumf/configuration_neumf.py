"""Configuration of neural collaborative filtering (NeuMF, He et al., 2017)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive


class NeuMFConfig(RecConfig):
    """Configuration of :class:`NeuMFModel`.

    Args:
        factors: dimension of the GMF (generalised matrix factorisation) embeddings.
        mlp_layers: widths of the MLP tower; its input is the concatenation of user and item MLP embeddings of
            size ``mlp_layers[0] // 2`` each.
        dropout: dropout after each MLP layer.
        num_negatives: sampled negatives per positive pair in :meth:`~NeuMFModel.fit`.
        learning_rate, weight_decay: Adam settings.
        epochs: passes over the positive pairs.
        batch_size: positive pairs per step; each brings ``num_negatives`` sampled negatives, so a step scores
            ``batch_size * (1 + num_negatives)`` rows (the default: 819 pairs, about 4,096 rows).
        optimizer: ``"adam"``, ``"adamw"``, ``"adagrad"`` or ``"sgd"`` (autograd on the loss).
        seed: seed of the initialisation and the sampling.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "neumf"

    def __init__(
        self,
        factors: int = 32,
        mlp_layers: list[int] | tuple[int, ...] = (64, 32, 16),
        dropout: float = 0.0,
        num_negatives: int = 4,
        learning_rate: float = 0.001,
        weight_decay: float = 0.0,
        epochs: int = 20,
        batch_size: int = 819,
        optimizer: str = "adam",
        seed: int = 0,
        **kwargs,
    ):
        check_positive(self, "factors", factors)
        mlp_layers = [int(w) for w in mlp_layers]
        if len(mlp_layers) < 2 or any(w <= 0 for w in mlp_layers) or mlp_layers[0] % 2:
            raise ValueError(
                f"NeuMFConfig: mlp_layers needs at least two positive widths, the first even, got {mlp_layers}."
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"NeuMFConfig: dropout must be in [0, 1), got {dropout!r}.")
        for name, value in (("num_negatives", num_negatives), ("learning_rate", learning_rate), ("epochs", epochs)):
            check_positive(self, name, value)
        check_positive(self, "batch_size", batch_size)
        check_positive(self, "weight_decay", weight_decay, allow_zero=True)
        check_choice(self, "optimizer", optimizer, ("adam", "adamw", "adagrad", "sgd"))
        self.factors = int(factors)
        self.mlp_layers = mlp_layers
        self.dropout = float(dropout)
        self.num_negatives = int(num_negatives)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.seed = int(seed)
        super().__init__(**kwargs)


__all__ = ["NeuMFConfig"]
