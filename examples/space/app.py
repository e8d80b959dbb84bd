"""A demo page for a saved hf-recsys model: a Gradio app that runs as a Hugging Face Space or locally.

It shows a known user's history and recommendations with titles, lets a visitor build a history by picking items
and recommends from it (models that score new users from a history), and shows the items most similar to one.

    python examples/space/app.py                                    # a small EASE model fitted on synthetic data
    python examples/space/app.py --model out/ease --items movies.csv --port 7860
    HF_RECSYS_DEMO_MODEL=org/name HF_RECSYS_DEMO_ITEMS=movies.csv python examples/space/app.py   # as on a Space

``--model`` (or ``$HF_RECSYS_DEMO_MODEL``) is a saved model folder or a Hub repo id; ``--items`` (or
``$HF_RECSYS_DEMO_ITEMS``) an item catalogue with ``item_id`` and ``title`` (anything ``hf_recsys.data.load_items``
reads). Without a model the app fits EASE on the synthetic generator, so it works offline. Needs
``pip install "hf-recsys[demo]"`` (Gradio).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

HEADERS_HISTORY = ["item_id", "title"]
HEADERS_RANKED = ["rank", "item_id", "title", "score"]


class DemoRecommender:
    """What the page shows, as plain tables: a model plus the titles of its items.

    Args:
        model: a fitted hf-recsys model (with its vocabularies).
        titles: ``{item_id: title}``; items without a title are shown as ``item <id>``.
        max_users: most user ids offered in the user picker (the page stays light on big logs).
    """

    def __init__(self, model: Any, titles: dict | None = None, max_users: int = 2000):
        self.model = model.eval()
        self.titles = dict(titles or {})
        items = model.item_vocab.decode(np.arange(model.config.num_items)).tolist()
        self.item_choices = [(self.title(i), i) for i in items]
        self.users = model.user_vocab.decode(np.arange(min(model.config.num_users, max_users))).tolist()
        self.supports_history = bool(getattr(model, "supports_history", False))

    def title(self, item: Any) -> str:
        return str(self.titles.get(item, f"item {item}"))

    def history(self, user: Any) -> list[list]:
        """The items ``user`` interacted with in training: rows ``[item_id, title]``."""
        if self.model.seen_items is None:
            return []
        row = self.model.user_vocab.encode([user])[0]
        items = self.model.item_vocab.decode(self.model.seen_items[row].indices).tolist()
        return [[i, self.title(i)] for i in items]

    def _ranked(self, ids: np.ndarray, scores: np.ndarray) -> list[list]:
        return [
            [rank, i, self.title(i), round(float(s), 4)]
            for rank, (i, s) in enumerate(zip(ids.tolist(), scores), start=1)
            if np.isfinite(s)  # -inf marks places no eligible item fills
        ]

    def recommend_user(self, user: Any, k: int = 10) -> list[list]:
        """Top-``k`` for a known user (seen items excluded): rows ``[rank, item_id, title, score]``."""
        ids, scores = self.model.recommend([user], k=int(k))
        return self._ranked(ids[0], scores[0])

    def recommend_history(self, items: Sequence[Any], k: int = 10) -> list[list]:
        """Top-``k`` for a new user who picked ``items`` (those excluded)."""
        if not items:
            raise ValueError("Pick at least one item to build a history.")
        if not self.supports_history:
            raise ValueError(f"{type(self.model).__name__} cannot recommend from a history of picked items.")
        ids, scores = self.model.recommend(["__visitor__"], k=int(k), histories=[list(items)])
        return self._ranked(ids[0], scores[0])

    def similar(self, item: Any, k: int = 10) -> list[list]:
        """The ``k`` items most similar to ``item``."""
        if item is None:
            raise ValueError("Pick an item.")
        ids, scores = self.model.similar_items([item], k=int(k))
        return self._ranked(ids[0], scores[0])


def synthetic_demo(num_users: int = 500, num_items: int = 300, seed: int = 0) -> DemoRecommender:
    """EASE fitted on the synthetic generator (seconds, offline), with the generator's titles."""
    from hf_recsys import AutoModelForRecommendation, list_models
    from hf_recsys.data import generate_interactions

    if "ease" not in list_models():
        raise ImportError("The default demo model is EASE, from the classic plugin: pip install hf-recsys-classic.")
    log, items = generate_interactions(
        num_users=num_users, num_items=num_items, num_interactions=num_users * 30, seed=seed
    )
    model = AutoModelForRecommendation.for_model("ease", l2=50.0).fit(log, show_progress=False)
    return DemoRecommender(model, dict(zip(items["item_id"], items["title"])))


def load_demo(model_path: str | None = None, items_path: str | None = None) -> DemoRecommender:
    """The saved model at ``model_path`` (folder or Hub repo id) with the titles of ``items_path``; with no
    ``model_path``, :func:`synthetic_demo`."""
    if not model_path:
        return synthetic_demo()
    from hf_recsys.hub import load_model

    titles = None
    if items_path:
        from hf_recsys.data import load_items

        catalogue = load_items(items_path)
        titles = dict(zip(catalogue["item_id"], catalogue["title"]))
    return DemoRecommender(load_model(model_path), titles)


def build_demo(demo: DemoRecommender):
    """The Gradio page (a ``gr.Blocks``) over ``demo``."""
    try:
        import gradio as gr
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError('The demo page needs Gradio: pip install "hf-recsys[demo]".') from exc

    def table(headers: list[str], label: str, elem_id: str):
        return gr.Dataframe(headers=headers, label=label, elem_id=elem_id, interactive=False, wrap=True)

    def answer(fn):  # a bad pick is a message on the page, not a stack trace
        def run(*args):
            try:
                return fn(*args)
            except (ValueError, KeyError) as exc:
                raise gr.Error(str(exc)) from exc

        return run

    m = demo.model
    with gr.Blocks(title=f"hf-recsys demo: {m.config.model_type}") as page:
        gr.Markdown(
            f"# hf-recsys: {m.config.model_type}\n{m.config.num_users:,} users, {m.config.num_items:,} items. "
            "Pick a user, or build a history of your own, or look up similar items."
        )
        k = gr.Slider(1, 50, value=10, step=1, label="how many items (k)", elem_id="k")
        gr.Markdown("## A user's history and recommendations")
        with gr.Row():
            user = gr.Dropdown(demo.users, value=demo.users[0], label="user", elem_id="user", filterable=True)
            show_user = gr.Button("Show this user", elem_id="show-user", variant="primary")
        with gr.Row():
            user_history = table(HEADERS_HISTORY, "history (training interactions)", "user-history")
            user_recs = table(HEADERS_RANKED, "recommendations", "user-recs")
        show_user.click(
            answer(lambda u, n: (demo.history(u), demo.recommend_user(u, n))), [user, k], [user_history, user_recs]
        )

        gr.Markdown("## Build a history: pick items you like")
        with gr.Row():
            picked = gr.Dropdown(demo.item_choices, multiselect=True, label="your items", elem_id="picked")
            rec_history = gr.Button(
                "Recommend for these",
                elem_id="recommend-history",
                variant="primary",
                interactive=demo.supports_history,
            )
        history_recs = table(HEADERS_RANKED, "recommendations for your history", "history-recs")
        rec_history.click(answer(demo.recommend_history), [picked, k], history_recs)

        gr.Markdown("## Similar items")
        with gr.Row():
            item = gr.Dropdown(demo.item_choices, value=demo.item_choices[0][1], label="an item", elem_id="item")
            show_similar = gr.Button("Similar items", elem_id="show-similar", variant="primary")
        similar = table(HEADERS_RANKED, "most similar items", "similar-items")
        show_similar.click(answer(demo.similar), [item, k], similar)
    return page


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=os.environ.get("HF_RECSYS_DEMO_MODEL"), help="saved model folder or repo id")
    p.add_argument("--items", default=os.environ.get("HF_RECSYS_DEMO_ITEMS"), help="item catalogue with titles")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    args = p.parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no calls home
    build_demo(load_demo(args.model, args.items)).launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
