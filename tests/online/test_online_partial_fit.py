"""partial_fit: the shared checks, vocabulary growth, MostPopular's exact update and the gradient families' update."""

import numpy as np
import pandas as pd
import pytest
import torch

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.modeling_utils import RecPreTrainedModel
from hf_recsys.registry import list_models
from hf_recsys.testing_utils import partial_fit_log, tiny_log


def test_every_registered_family_implements_partial_fit():
    """Families added later (plugins, the LLM families) are covered: the contract test of each family
    (RecommenderContractTests.test_partial_fit_new_users_and_items) runs the update itself. Toy models that other
    tests register in-process (no distribution) are not families."""
    missing = [
        name
        for name, spec in list_models().items()
        if spec.distribution is not None
        and spec.model_class._partial_fit is RecPreTrainedModel._partial_fit
        and spec.model_class.partial_fit is RecPreTrainedModel.partial_fit
    ]
    assert not missing, f"families without partial_fit: {missing}"


def _fitted(**cfg):
    return MostPopularModel(MostPopularConfig(**cfg)).fit(tiny_log())


@pytest.mark.parametrize(
    "cfg",
    [
        {},
        {"weighting": "users"},
        {"weighting": "rating"},
        {"half_life_days": 0.5},
        {"weighting": "rating", "half_life_days": 2.0},
    ],
)
def test_most_popular_update_equals_refit(cfg):
    log = tiny_log()
    new = partial_fit_log(log)
    new = pd.concat([new, log.iloc[:5].assign(timestamp=new.timestamp.max() + 1)])  # repeated pairs too
    updated = _fitted(**cfg).partial_fit(new)
    refit = MostPopularModel(MostPopularConfig(**cfg)).fit(pd.concat([log, new]))
    order = refit.item_vocab.encode(updated.item_vocab.ids)
    np.testing.assert_allclose(updated.item_scores.numpy(), refit.item_scores.numpy()[order], rtol=1e-5)


def test_vocabularies_grow_by_appending():
    model = _fitted()
    users, items = model.user_vocab.ids.tolist(), model.item_vocab.ids.tolist()
    model.partial_fit(partial_fit_log(tiny_log()))
    assert model.user_vocab.ids.tolist()[: len(users)] == users
    assert model.item_vocab.ids.tolist() == items + [9001, 9002]
    assert model.seen_items.shape == (len(users) + 2, len(items) + 2)
    assert model.config.num_users == len(users) + 2
    assert model.seen_items[model.user_vocab.encode(["new-a"])[0]].nnz == 7


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.drop(columns="rating"), "no column 'rating'"),
        (lambda d: d.drop(columns="timestamp"), "no column 'timestamp'"),
        (lambda d: d.assign(timestamp=d.timestamp.astype(str)), "column 'timestamp' holds string"),
        (lambda d: d.assign(user_id=[None] + d.user_id.tolist()[1:]), "'user_id' holds 1 missing"),
        (lambda d: d.assign(item_id=[np.nan] + d.item_id.astype(float).tolist()[1:]), "'item_id' holds 1 missing"),
        (lambda d: d.iloc[:0], "empty"),
    ],
)
def test_bad_update_logs_are_clear_errors(change, message):
    model = _fitted()
    before = model.item_scores.clone()
    with pytest.raises(ValueError, match=message):
        model.partial_fit(change(partial_fit_log(tiny_log())))
    assert torch.equal(model.item_scores, before) and len(model.user_vocab) == 40, "a refused log changes nothing"


def test_extra_column_and_other_id_type_are_refused():
    model = _fitted()
    with pytest.raises(ValueError, match="'rating' that the fitted log did not have"):
        MostPopularModel(MostPopularConfig()).fit(tiny_log().drop(columns="rating")).partial_fit(tiny_log())
    with pytest.raises(ValueError, match="column 'user_id' holds integer values, but the fitted log's held string"):
        model.partial_fit(partial_fit_log(tiny_log()).assign(user_id=7))


def test_partial_fit_before_fit_is_a_clear_error():
    from hf_recsys.modeling_utils import NotFittedError

    with pytest.raises(NotFittedError, match="fit"):
        MostPopularModel(MostPopularConfig()).partial_fit(tiny_log())


def test_datasets_input_and_the_schema_survives_save_load(tmp_path):
    import datasets

    from hf_recsys import AutoModelForRecommendation

    model = _fitted()
    model.save_pretrained(tmp_path)
    loaded = AutoModelForRecommendation.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="no column 'timestamp'"):
        loaded.partial_fit(partial_fit_log(tiny_log()).drop(columns="timestamp"))
    loaded.partial_fit(datasets.Dataset.from_pandas(partial_fit_log(tiny_log())))
    assert "new-a" in loaded.user_vocab


def test_gradient_update_new_rows_start_from_the_mean_and_move():
    from hf_recsys_classic import BPRMFConfig, BPRMFModel

    model = BPRMFModel(BPRMFConfig(factors=8, epochs=3, seed=0)).fit(tiny_log(), show_progress=False)
    old_items = model.item_embeddings.weight.detach().clone()
    model.partial_fit(partial_fit_log(tiny_log()), epochs=0 + 1, learning_rate=1e-9)  # a negligible step
    new_rows = model.item_embeddings.weight.detach()[-2:]
    torch.testing.assert_close(new_rows, old_items.mean(0, keepdim=True).expand(2, -1), atol=1e-6, rtol=0)
    model.partial_fit(partial_fit_log(tiny_log()).assign(user_id="new-c"), epochs=20, learning_rate=0.05)
    new_c = model.user_embeddings.weight.detach()[model.user_vocab.encode(["new-c"])[0]]
    assert not torch.allclose(new_c, model.user_embeddings.weight.detach()[:40].mean(0), atol=1e-3)


def test_replay_samples_old_interactions():
    from hf_recsys_classic import NeuMFConfig, NeuMFModel

    model = NeuMFModel(NeuMFConfig(factors=4, epochs=1, seed=0)).fit(tiny_log().drop(columns="rating"))
    new = partial_fit_log(tiny_log()).drop(columns="rating")
    seen = []
    model.training_examples = (lambda f: lambda inter, **kw: seen.append(len(inter)) or f(inter, **kw))(
        model.training_examples
    )
    model.partial_fit(new, replay=2.0, epochs=1)
    assert seen == [3 * len(new)]
    with pytest.raises(ValueError, match="replay_log"):
        BPRMF_rated().partial_fit(partial_fit_log(tiny_log()), replay=1.0)
    with pytest.raises(ValueError, match="replay_log has no 'rating'"):
        BPRMF_rated().partial_fit(
            partial_fit_log(tiny_log()), replay=1.0, replay_log=tiny_log().drop(columns="rating")
        )


def test_replay_from_the_touched_users_and_items():
    from hf_recsys_classic import NeuMFConfig, NeuMFModel

    log = tiny_log().drop(columns="rating")
    new = partial_fit_log(tiny_log()).drop(columns="rating")
    model = NeuMFModel(NeuMFConfig(factors=4, epochs=1, seed=0)).fit(log)
    seen = []
    model.training_examples = (lambda f: lambda inter, **kw: seen.append(inter) or f(inter, **kw))(
        model.training_examples
    )
    model.partial_fit(new, replay=2.0, replay_from="touched_users", epochs=1)
    replayed = seen[-1].user_idx[: len(seen[-1]) - len(new)]  # the replay comes before the new rows
    known = log.user_id.iloc[0]  # the one known user of the update (the others are new: no old rows)
    assert len(replayed) == (log.user_id == known).sum()  # all of them: fewer than 2 x the new rows
    assert set(model.user_vocab.decode(replayed)) == {known}
    model.partial_fit(new, replay=0.5, replay_from="touched_items", epochs=1)
    replayed = seen[-1].item_idx[: len(seen[-1]) - len(new)]
    assert len(replayed) == round(0.5 * len(new)) and set(model.item_vocab.decode(replayed)) <= set(new.item_id)
    before = model.gmf_user.weight.detach().clone()
    with pytest.raises(ValueError, match="replay_from='users' is not one of"):
        model.partial_fit(new.assign(user_id="new-z"), replay=1.0, replay_from="users")
    assert "new-z" not in model.user_vocab
    torch.testing.assert_close(model.gmf_user.weight.detach(), before)  # refused before training: the old tables


def BPRMF_rated():
    from hf_recsys_classic import BPRMFConfig, BPRMFModel

    return BPRMFModel(BPRMFConfig(factors=4, epochs=1)).fit(tiny_log(), show_progress=False)


def test_sequential_update_continues_the_stored_histories():
    from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

    cfg = CausalSequentialConfig(max_sequence_length=12, hidden_size=16, num_heads=2, num_layers=1, epochs=1)
    model = CausalSequentialRecommender(cfg).fit(tiny_log(), show_progress=False)
    before = model.user_history.clone()
    log = tiny_log()
    new = partial_fit_log(log)
    model.partial_fit(new, epochs=1)
    known = model.user_vocab.encode([log.user_id.iloc[0]])[0]
    untouched = model.user_vocab.encode(["u5"])[0]
    torch.testing.assert_close(model.user_history[untouched], before[untouched])
    expected = torch.cat(
        [before[known][before[known] > 0], torch.as_tensor(model.item_vocab.encode([9001, 9002]) + 1)]
    )
    torch.testing.assert_close(model.user_history[known][-len(expected) :], expected[-12:])


def test_a_refused_update_leaves_the_model_as_it_was():
    from hf_recsys_classic import BPRMFConfig, BPRMFModel

    model = BPRMFModel(BPRMFConfig(factors=4, epochs=1)).fit(tiny_log(), show_progress=False)
    users, items = model.user_vocab, model.item_vocab
    weights = model.item_embeddings.weight.detach().clone()
    with pytest.raises(ValueError, match="learning_rate"):
        model.partial_fit(partial_fit_log(tiny_log()), learning_rate=-1.0)
    assert model.user_vocab is users and model.item_vocab is items and model.seen_items.shape == (40, 25)
    assert model.config.num_items == 25 and torch.equal(model.item_embeddings.weight, weights)
    assert model.recommend(["u1"], k=3)[0].shape == (1, 3)


def test_an_option_the_family_does_not_take_is_an_error():
    model = _fitted()
    with pytest.raises(TypeError, match="epochs"):
        model.partial_fit(partial_fit_log(tiny_log()), epochs=3)
    assert len(model.user_vocab) == 40


def test_biased_mf_update_keeps_the_global_mean():
    from hf_recsys_classic import BiasedMFConfig, BiasedMFModel

    model = BiasedMFModel(BiasedMFConfig(factors=4, epochs=2)).fit(tiny_log(), show_progress=False)
    mean = float(model.global_mean)
    model.partial_fit(partial_fit_log(tiny_log()).assign(rating=0.5), epochs=1)
    assert float(model.global_mean) == mean and float(model.rating_range[0]) == 0.5


def test_merge_seen_equals_the_sparse_sum():
    """The spliced merge against ``pad(seen) + new`` made binary: the same indices, pointers and values, with rows
    and items joining, repeated and already seen pairs, unknown items (-1) and empty updates."""
    import scipy.sparse as sp

    from hf_recsys.data.views import Interactions
    from hf_recsys.online import merge_seen, pad_csr

    rng = np.random.default_rng(0)
    for trial in range(200):
        n_users, n_items = rng.integers(1, 30), rng.integers(1, 40)
        seen = sp.random(n_users, n_items, density=rng.random() * 0.5, format="csr", random_state=trial)
        seen.data[:] = 1
        n_users, n_items = n_users + rng.integers(0, 3), n_items + rng.integers(0, 3)
        k = rng.integers(0, 30)
        inter = Interactions(rng.integers(0, n_users, k), rng.integers(-1, n_items, k), None, None, n_users, n_items)
        new = inter.to_csr("binary")
        want = (pad_csr(seen, new.shape) + new).tocsr()
        want.data[:] = 1
        want.sort_indices()
        got, pairs = merge_seen(seen.astype(np.float32), inter, return_pairs=True)
        assert got.shape == want.shape and got.dtype == np.float32 and got.has_canonical_format
        added = want - pad_csr(seen, new.shape)  # the pairs new to seen, each once
        assert sorted(zip(*pairs)) == sorted(zip(*added.nonzero()))
        np.testing.assert_array_equal(got.indptr, want.indptr)
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_array_equal(got.data, want.data)
