"""Configuration of biased matrix factorisation for explicit ratings (the Netflix-prize "SVD" model)."""

from __future__ import annotations

from hf_recsys.configuration_utils import RecConfig, check_choice, check_positive


class BiasedMFConfig(RecConfig):
    """Configuration of :class:`BiasedMFModel`.

    Args:
        factors: latent dimension.
        learning_rate: optimiser step size.
        regularization: L2 weight on the biases and embeddings of each rating in the batch (like Surprise's
            ``reg_all``).
        epochs: passes over the ratings in :meth:`~BiasedMFModel.fit`.
        batch_size: ratings per minibatch.
        optimizer: ``"sgd"`` (default): the lean path, per-rating SGD as in Surprise's SVD, vectorised over each
            minibatch with closed-form gradients; ``"adam"``, ``"adamw"`` or ``"adagrad"``: autograd on
            :meth:`~BiasedMFModel.forward`'s loss (MSE + L2, both batch means) with that torch optimiser.
        init_std: standard deviation of the initial embeddings (biases start at 0).
        history_rating: the rating assumed for items in a cold user's history (histories carry no ratings);
            ``None`` uses the highest rating seen in training.
        seed: seed of the initialisation and the shuffling.
        **kwargs: passed to :class:`RecConfig`.
    """

    model_type = "biased_mf"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.005,
        regularization: float = 0.02,
        epochs: int = 20,
        batch_size: int = 512,
        optimizer: str = "sgd",
        init_std: float = 0.1,
        history_rating: float | None = None,
        seed: int = 0,
        **kwargs,
    ):
        for name, value in (("factors", factors), ("learning_rate", learning_rate), ("epochs", epochs)):
            check_positive(self, name, value)
        check_positive(self, "batch_size", batch_size)
        check_positive(self, "regularization", regularization, allow_zero=True)
        check_positive(self, "init_std", init_std)
        check_choice(self, "optimizer", optimizer, ("adam", "adamw", "adagrad", "sgd"))
        self.factors = int(factors)
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.optimizer = optimizer
        self.init_std = float(init_std)
        self.history_rating = None if history_rating is None else float(history_rating)
        self.seed = int(seed)
        super().__init__(**kwargs)


__all__ = ["BiasedMFConfig"]
