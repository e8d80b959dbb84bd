"""The synthetic log generator: sizes, realism properties, determinism and scale."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from hf_recsys.data import generate_interactions, generate_interactions_table, write_synthetic_parquet


@pytest.fixture(scope="module")
def default_log():
    log, items = generate_interactions(seed=0)
    return log.to_pandas(), items.to_pandas()


def test_sizes_columns_and_no_repeated_pairs(default_log):
    log, items = default_log
    assert len(log) == 20_000 and len(items) == 500
    assert list(log.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert list(items.columns) == ["item_id", "title", "genres", "text"]
    assert log.user_id.nunique() == 1000 and set(log.item_id) <= set(items.item_id)
    assert not log.duplicated(["user_id", "item_id"]).any()
    assert log.rating.between(1, 5).all() and log.rating.nunique() == 5


def test_long_tail_and_activity_skew(default_log):
    log, _ = default_log
    pop = log.item_id.value_counts().to_numpy()
    assert pop[: len(pop) // 10].sum() / len(log) > 0.35  # top 10% of items: a large share (uniform: 0.1)
    assert pop[-len(pop) // 2 :].sum() / len(log) < 0.25  # bottom half: a small share (uniform: 0.5)
    act = log.groupby("user_id").size()
    assert act.max() > 5 * act.median() and act.min() >= 1


def test_timestamps_ordered_within_users_by_default(default_log):
    log, _ = default_log
    assert log.groupby("user_id").timestamp.apply(lambda t: t.is_monotonic_increasing).all()
    assert log.timestamp.between(1_577_836_800, 1_577_836_800 + 2 * 365 * 86_400).all()


def test_item_text_follows_latent_tastes(default_log):
    log, items = default_log
    genre = items.set_index("item_id").genres.map(lambda g: g[0])
    share = log.assign(g=log.item_id.map(genre)).groupby("user_id").g.agg(lambda s: s.value_counts().iloc[0] / len(s))
    # users concentrate on a genre far beyond chance (8 genres: ~1/8 + noise)
    assert share[log.groupby("user_id").size() >= 10].mean() > 0.4
    words = items.title.str.split().str[0]
    same_genre_words = (
        items.assign(w=words).groupby("w").genres.agg(lambda g: g.str[0].value_counts().iloc[0] / len(g))
    )
    assert same_genre_words.mean() > 0.7  # a title word points to a genre
    assert items.text.str.contains("Genres: ").all()


def test_determinism_by_seed():
    a, _ = generate_interactions_table(100, 60, 1_500, seed=5)
    b, _ = generate_interactions_table(100, 60, 1_500, seed=5)
    c, _ = generate_interactions_table(100, 60, 1_500, seed=6)
    assert a.equals(b) and not a.equals(c)


def test_sort_by_time_and_parquet_writer(tmp_path):
    path, items_path = write_synthetic_parquet(
        tmp_path / "log.parquet", tmp_path / "items.parquet", num_users=50, num_items=40, num_interactions=600,
        sort_by_time=True, with_ratings=False,
    )  # fmt: skip
    table = pq.read_table(path)
    assert table.num_rows == 600 and table.column_names == ["user_id", "item_id", "timestamp"]
    assert np.all(np.diff(table.column("timestamp").to_numpy()) >= 0)
    assert pq.read_table(items_path).num_rows == 40


def test_bad_sizes_are_clear_errors():
    with pytest.raises(ValueError, match="num_interactions"):
        generate_interactions_table(100, 50, 50)
    with pytest.raises(ValueError, match="too many"):
        generate_interactions_table(10, 10, 1_000)


@pytest.mark.slow
def test_scales_to_a_million_rows_quickly():
    import time

    t0 = time.perf_counter()
    table, _ = generate_interactions_table(20_000, 5_000, 1_000_000, seed=0)
    assert table.num_rows == 1_000_000
    assert time.perf_counter() - t0 < 30  # about 1-2 s on 2 idle cores; generous for shared CI machines
