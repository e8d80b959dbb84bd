"""Profile one ``partial_fit`` of each solver family on the partial_fit benchmark's data (cProfile).

The model is fitted on the warm-up part of ml-latest-small (everything before the last 10 calendar months), then
updated with the first monthly chunk (2017-12) under cProfile; a refit on warm-up + chunk is timed beside it.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/online/profile_partial_fit.py [--families als]``.
"""

from __future__ import annotations

import argparse
import copy
import cProfile
import io
import pstats
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "classic"))
sys.path.insert(0, str(HERE))

from _common import load_average, load_ratings  # noqa: E402
from partial_fit import FAMILIES, commit  # noqa: E402

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.evaluation.streaming import time_chunks  # noqa: E402

warnings.filterwarnings("ignore")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="most_popular,als,item_knn,user_knn,ease")
    parser.add_argument("--chunk", type=int, default=0, help="which of the 10 chunks updates the model")
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    log = load_ratings().drop(columns="rating")
    warm, chunks = time_chunks(log, freq="MS", num_chunks=10)
    past = pd.concat([warm] + [c for _, _, c in chunks[: args.chunk]], ignore_index=True)
    chunk = chunks[args.chunk][2]
    print(f"commit {commit()}, load {load_average()}, chunk {chunks[args.chunk][0]} ({len(chunk)} rows)")
    for name in args.families.split(","):
        config = FAMILIES[name][0]
        make = lambda name=name, config=config: AutoModelForRecommendation.for_model(name, **config)  # noqa: E731
        base = make().fit(past, show_progress=False)
        model = copy.deepcopy(base)
        if name == "ease":  # the first update after fit also recovers P: time it apart from a second one
            t = time.perf_counter()
            copy.deepcopy(base).partial_fit(chunk)
            print(f"== ease: first update (recovers P) {time.perf_counter() - t:.3f} s")
            model.partial_fit(chunk.iloc[: len(chunk) // 2])  # P recovered: the profile is of a later update
            chunk_used = chunk.iloc[len(chunk) // 2 :]
        else:
            chunk_used = chunk
        prof = cProfile.Profile()
        t = time.perf_counter()
        prof.enable()
        model.partial_fit(chunk_used)
        prof.disable()
        pf = time.perf_counter() - t
        t = time.perf_counter()
        make().fit(pd.concat([past, chunk], ignore_index=True), show_progress=False)
        rf = time.perf_counter() - t
        print(f"== {name}: partial_fit {pf:.3f} s, refit {rf:.3f} s, ratio {pf / rf:.3f}")
        s = io.StringIO()
        pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(args.top)
        print("\n".join(line for line in s.getvalue().splitlines() if line.strip())[-3000:])
    print(f"load after {load_average()}")


if __name__ == "__main__":
    main()
