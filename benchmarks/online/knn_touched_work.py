"""How much of a KNN refit's similarity work the rows touched by each monthly chunk carry (ml-latest-small).

``knn_prune_update`` recomputes the touched rows' similarities to every row (their norms and co-occurrences moved)
and merges them into the other rows' kept lists; a refit computes every row's. The work of one row's similarities
is its co-occurrences: for an item row, the sum over its users of their history lengths; for a user row, the sum
over its items of their popularity. This script prints, for the 10 chunks of ``partial_fit.py``, the share of the
rows touched and the share of the co-occurrence work they carry: an update that recomputes the touched rows from
the data costs at least that share of a refit's co-occurrence loops, whatever its selections cost.

    .venv/bin/python benchmarks/online/knn_touched_work.py   # writes knn_touched_work.md beside this script
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "classic"))

from _common import load_ratings, machine  # noqa: E402


def main() -> None:
    df = load_ratings().sort_values("timestamp", kind="stable")
    month = pd.to_datetime(df.timestamp, unit="s").dt.to_period("M")
    rows = []
    for m in sorted(month.unique())[-10:]:
        seen = df[month <= m]
        chunk = df[month == m]
        user_len = seen.groupby("user_id").size()
        item_pop = seen.groupby("item_id").size()
        item_work = seen.assign(w=seen.user_id.map(user_len)).groupby("item_id").w.sum()
        user_work = seen.assign(w=seen.item_id.map(item_pop)).groupby("user_id").w.sum()
        items, users = chunk.item_id.unique(), chunk.user_id.unique()
        rows.append(
            f"| {m} | {len(items)} / {len(item_work)} | {len(items) / len(item_work):.3f} | "
            f"{item_work[items].sum() / item_work.sum():.3f} | {len(users)} / {len(user_work)} | "
            f"{len(users) / len(user_work):.3f} | {user_work[users].sum() / user_work.sum():.3f} |"
        )
    info = machine()
    text = "\n".join(
        [
            "# Share of a KNN refit's co-occurrence work in the rows each chunk touches (ml-latest-small)",
            "",
            f"{info.get('date', '')} commit {info.get('commit', '?')}; counts only (no timing). See the script's "
            "docstring for what is counted.",
            "",
            "| chunk | items touched | share of items | share of ItemKNN work | users touched | share of users | "
            "share of UserKNN work |",
            "|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )
    (HERE / "knn_touched_work.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
