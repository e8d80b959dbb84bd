"""Streaming (prequential) evaluation: chunking, the replay protocol, exact updates matching refits, plot and CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from hf_recsys import MostPopularConfig, MostPopularModel
from hf_recsys.evaluation import evaluate_model
from hf_recsys.evaluation.streaming import streaming_evaluation, time_chunks
from hf_recsys.testing_utils import tiny_log

DAY = 86400


def _log(num_users=60, num_items=30):
    """tiny_log spread over ~5 months (2021-01 .. 2021-05), users arriving over time."""
    log = tiny_log(num_users=num_users, num_items=num_items, per_user=8)
    user = log.user_id.str[1:].astype(int)
    step = log.groupby("user_id").cumcount()
    t0 = int(pd.Timestamp("2021-01-01", tz="UTC").timestamp())
    return log.assign(timestamp=t0 + user * 2 * DAY + step * 3 * DAY)


def test_time_chunks_are_calendar_months():
    log = _log()
    warm, chunks = time_chunks(log, freq="MS", num_chunks=3)
    assert [c[0] for c in chunks] == ["2021-03-01", "2021-04-01", "2021-05-01"]
    assert chunks[0][1] == "2021-04-01"
    assert len(warm) + sum(len(c[2]) for c in chunks) == len(log)
    assert pd.to_datetime(warm.timestamp, unit="s").max() < pd.Timestamp("2021-03-01")
    warm2, chunks2 = time_chunks(log, freq="MS", start="2021-04-15")
    assert chunks2[0][0] == "2021-04-15" and len(warm2) > len(warm)


@pytest.mark.parametrize(
    "kwargs, message",
    [({}, "exactly one"), ({"num_chunks": 2, "start": "2021-03-01"}, "exactly one"), ({"num_chunks": 0}, ">= 1")],
)
def test_time_chunks_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        time_chunks(_log(), **kwargs)
    with pytest.raises(ValueError, match="'timestamp'"):
        time_chunks(_log().drop(columns="timestamp"), num_chunks=2)
    with pytest.raises(ValueError, match="update strategies"):
        streaming_evaluation(lambda: None, _log(), num_chunks=2, strategies=["retrain"])


def test_prequential_protocol_and_exact_updates_match_refits():
    log = _log()
    make = lambda: MostPopularModel(MostPopularConfig())  # noqa: E731
    result = streaming_evaluation(make, log, num_chunks=3, ks=(5,), metrics=("ndcg", "recall"))
    df = result.to_pandas()
    assert len(df) == 3 * 3 and set(df.strategy) == {"none", "partial_fit", "refit"}
    by = {s: part.reset_index(drop=True) for s, part in df.groupby("strategy")}
    # an exact update scores every chunk as the refit does
    np.testing.assert_allclose(by["partial_fit"]["ndcg@5"], by["refit"]["ndcg@5"], rtol=1e-6)
    # users who joined after the warm-up are unknown without updates
    assert (by["none"]["num_evaluated"] <= by["partial_fit"]["num_evaluated"]).all()
    assert by["none"]["num_evaluated"].iloc[-1] < by["partial_fit"]["num_evaluated"].iloc[-1]
    # chunk 1 by hand: the model fitted on everything before it, scored on the chunk's known users
    warm, chunks = time_chunks(log, num_chunks=3)
    past = pd.concat([warm, chunks[0][2]])
    model = make().fit(past)
    test = chunks[1][2][chunks[1][2].user_id.isin(model.user_vocab.ids)]
    expected = evaluate_model(model, past, test, ks=5, metrics=["ndcg"], show_progress=False)["ndcg@5"]
    assert by["refit"]["ndcg@5"].iloc[1] == pytest.approx(expected)
    summary = result.summary()
    assert set(summary) == {"none", "partial_fit", "refit"} and "update_seconds" in summary["refit"]
    assert 0 <= summary["refit"]["update_cpu_seconds"] <= summary["refit"]["update_seconds"] * 1.5 + 0.05  # 1 thread
    assert "| chunk | start |" in result.to_markdown()


def test_refits_come_from_make_refit_model():
    """``make_refit_model`` builds every refit; the warm-up fit (so the updated model) comes from ``make_model``."""
    made = {"model": 0, "refit": 0}

    def factory(kind):
        def make():
            made[kind] += 1
            return MostPopularModel(MostPopularConfig())

        return make

    streaming_evaluation(factory("model"), _log(), num_chunks=3, ks=(5,), make_refit_model=factory("refit"))
    assert made == {"model": 1, "refit": 3}


def test_ease_partial_fit_tracks_refit_in_the_stream():
    from hf_recsys_classic import EASEConfig, EASEModel

    make = lambda: EASEModel(EASEConfig(l2=5.0, solver_dtype="float64"))  # noqa: E731
    result = streaming_evaluation(make, _log(), num_chunks=2, strategies=("partial_fit", "refit"), ks=(5,))
    df = result.to_pandas()
    np.testing.assert_allclose(
        df[df.strategy == "partial_fit"]["ndcg@5"].to_numpy(),
        df[df.strategy == "refit"]["ndcg@5"].to_numpy(),
        atol=1e-6,
    )


def test_plot_and_cli(tmp_path):
    pytest.importorskip("matplotlib")
    from hf_recsys.cli import main

    path = tmp_path / "log.csv"
    _log().to_csv(path, index=False)
    out, png = tmp_path / "stream.json", tmp_path / "curves.png"
    argv = ["stream-eval", "--model-type", "most_popular", "--log", str(path), "--chunks", "2", "--k", "5"]
    assert main(argv + ["--output", str(out), "--plot", str(png)]) == 0
    payload = json.loads(out.read_text())
    assert len(payload["rows"]) == 2 * 3 and "ndcg@5" in payload["metrics"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
