"""partial_fit against a full refit on ml-latest-small, replayed month by month (prequential).

The last 10 calendar months of ml-latest-small (2017-12 .. 2018-09) are the chunks; everything before is the
warm-up the model is fitted on. For each chunk, the chunk's users known to the model are ranked over every item
(items they had before the chunk masked) and scored against the chunk's items (NDCG@10, Recall@10); then the model
is updated with the chunk: ``partial_fit`` (the update), ``refit`` (a fresh model fitted on everything so far) or
``none`` (the warm-up model, for reference). Implicit feedback: every rating is an interaction (the rating column
is dropped). Hyper-parameters are those chosen on validation in benchmarks/classic/quality.md (temporal protocol);
no setting was tuned on these chunks.

Targets (issue 13): partial_fit within 3% NDCG of the refit, at <= 1/10 of the refit time, for the solver families.

Run: ``OMP_NUM_THREADS=1 nice -n 10 .venv/bin/python benchmarks/online/partial_fit.py [--families ease,als]``.
Writes ``partial_fit.md`` and ``partial_fit.json`` beside this script (families already there are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "classic"))

from _common import load_average, load_ratings, machine  # noqa: E402

from hf_recsys import AutoModelForRecommendation  # noqa: E402
from hf_recsys.evaluation.streaming import streaming_evaluation  # noqa: E402

warnings.filterwarnings("ignore")

FAMILIES = {  # config, fit options, partial_fit options
    "most_popular": ({}, {}, {}),
    # models meant for online updates (deeper lists, kept co-occurrence counts); refitted without those options
    "item_knn": ({"k": 50, "shrink": 10.0, "update_reserve": 0.5, "update_cache": True}, {}, {}),
    "user_knn": ({"k": 30, "update_reserve": 0.5, "update_cache": True}, {}, {}),
    "ease": ({"l2": 500.0}, {}, {}),
    "als": ({"factors": 64, "regularization": 1.0, "alpha": 1.0, "iterations": 15}, {}, {}),
    # partial_fit options chosen on the validation stream before the test chunks, best mean over 5 seeds
    # (tune_bpr_partial_fit.md, tune_bpr_partial_fit_wide.md: uniform replay, 60 epochs; then
    # tune_bpr_replay_from.md and tune_bpr_replay_from_wide.md: the replay from the touched users' and items' rows)
    "bprmf": (
        {"factors": 64, "epochs": 30, "regularization": 0.01},
        {},
        {"replay": 4.0, "replay_from": "touched", "epochs": 60, "learning_rate": 0.02},
    ),
    "neumf": ({"factors": 32, "mlp_layers": [64, 32, 16], "epochs": 8}, {}, {"replay": 1.0}),
}
SOLVER_FAMILIES = ("most_popular", "item_knn", "user_knn", "ease", "als")
#: options that only serve updates (the top-k lists are the same without them): the refits leave them out, so the
#: update is measured against the fastest refit of the same model
UPDATE_ONLY_OPTIONS = ("update_reserve", "update_cache")


PROFILE_NOTES = """## Where the update time goes (profiles)

`benchmarks/online/profile_partial_fit.py` fits each solver family on the warm-up, then profiles (cProfile) one
`partial_fit` with the first chunk (2017-12, 536 rows) and times a refit beside it. All on this machine, torch 1
thread; the load is given per run (other helpers' jobs: the times move with it, the ratios less).

Before this round (commit 97ba044, load average 2.2):

- **shared path**: 4.6 ms a warm update (the first call in a process 31 ms: pyarrow's compute kernels start): the
  log check 0.4 ms, the vocabulary growth 2.2 ms (each column looked up, then looked up again to extend it, then
  once more to encode), the encoding 1.0 ms, the seen-items merge 0.9 ms, MostPopular's own hook 0.04 ms, the
  finiteness check 0.35 ms; the pandas columns were converted to Arrow 12 times per update. Now the log's
  canonical columns are read once into an Arrow table and each column is looked up once to grow its vocabulary.
- **ALS** (0.19 s vs refit 0.80 s): 90% in `solve_exact`: the 436 touched items went into one padded batch as long
  as the longest row (312), 5x the 25,491 non-zeros: the gather of the factor rows 50 ms, the confidence scaling
  37 ms, the batched products 37 ms, the Cholesky factorisations 18 ms. Now the rows are batched by length (within
  25%), each batch with its own Cholesky: 0.064 s vs refit 0.667 s at ca71589 (load 4.3).
- **UserKNN / ItemKNN**: the whole similarity build (`knn_prune`, 0.049 s of UserKNN's 0.060 s). Now
  `knn_prune_update` (see the README): on ItemKNN at ca71589 (load 4.2) 0.15 s vs a 1.0 s refit, of which the
  top-k selections 51 ms and the sparse product 12 ms; with the reserve (1.5 k lists) no row needed the exact
  fallback on this chunk, without it (k lists) 2,206 of the 9.3k untouched rows did. On chunk 3 (1,131 touched
  items, load 12): the product 74 ms, the transposed copy of the touched block 119 ms, the touched rows' top-k
  86 ms, the merge about 290 ms; a rebuild 2.6 s.
- **EASE** (commit 3098825, load 13): the first update 13.4 s, a later one 9.7 s vs a 40.2 s refit; of the 9.7 s,
  the element-wise finiteness check over the 9.7k x 9.7k B took 5.0 s, converting P into a new float32 B 2.7 s,
  the rank-32 Woodbury product 0.72 s, the two sparse products with P 0.30 s, the column division 0.23 s. Now the
  finiteness check is one sum per tensor (the element-wise check only names a failure), B is rewritten in place
  when no item joins, P stays in a float64 buffer with room for new items (no n x n copy when items join), and
  the first update after `fit` gets P from B and the diagonal of P kept by `fit` (`P_ij = -B_ij P_jj`) in
  O(n^2), without a Gram matrix.
- **MostPopular**: its hook is 0.04 ms; the update is the shared path (about 3 ms a chunk when the machine lets
  it run, 11 ms in the chunks where it was preempted), against a refit of 20-35 ms.

Then (commits 2289fee, 8483a54, a67fcdc; load 4-7.5):

- **shared path**: `IdVocab.encode` / `extend` looked every id up with Arrow's `index_in` / `is_in`, which build a
  hash table of the whole vocabulary per call (0.55 ms for 8.8k items), and `extend` checked the whole new
  vocabulary for duplicates (`pc.unique`, 0.33 ms); `_as_arrow` cast int64 arrays to int64 (4 ms over 80 calls
  in 10 updates). Now the vocabulary keeps a sorted copy of its ids with their indices, built once, searched by
  `np.searchsorted` (35 us for the same lookup) and carried through `extend` by inserting the new ids (no new sort,
  no duplicate check: they were found unknown). The 10 updates' shared path: vocabulary growth 17.5 -> 9 ms at
  about the same refit times. Tried and not kept: inserting the new pairs into the seen-items CSR row by row
  instead of `seen + new` (0.5-0.67 ms against 0.28-0.42 ms for 16 rows: numpy's per-call cost).
- **ItemKNN** (chunk 2017-12, 436 touched items of 8.8k, a warm call 78 ms): the touched rows' top-k on the
  transposed view of the `(n, |T|)` block instead of a contiguous copy (25 ms against 22 + 29 ms); the untouched
  rows' hits found by one comparison and one `nonzero` over the whole block (no gather of its rows per block), and
  the changed rows merged in blocks of rows with similar hit counts (narrow merges: the merge's top-k 29 -> 14 ms).
  Left: the touched top-k (25 ms), the product and the shrink division (10 + 10 ms), the merge (about 25 ms).
  Tried and not kept: a two-pass threshold for the touched top-k (the `k`-th value over every 8th row as a threshold
  every top-k value reaches; exact) — 49 ms, slower: most entries are 0, so the threshold is hardly selective and
  the `nonzero` over the transposed mask costs 18 ms; `np.argpartition` on float32 was 630 ms on this block (the
  many zeros), `torch.topk(sorted=False)`, along dim 0, or by 64-row slabs no faster. From a67fcdc the merge finds
  its hits by row slabs of at most `_HIT_BUDGET` (16M) hits, so its index memory stays bounded (one slab here).
- **runs**: at 8483a54 (load 6.5) MostPopular 0.105, ItemKNN 0.113, UserKNN 0.070; at a67fcdc (same MostPopular
  and shared code, load 4.3) 0.141, 0.119, 0.086. MostPopular's updates are bimodal: 1.7-3.0 ms, or 6.0-6.5 ms in
  2-4 chunks of a run (other chunks in each run); alone in a loop (no scoring or refits between), 10 updates x 3
  took 1.2-2.1 ms each, no garbage collection during any of them.
- **cold caches** (7aee175, load 2.1, 10 MostPopular updates in one process): alone 16.7-17.7 ms, each after a
  64 MB array write (caches evicted) 25.5-26.6 ms, each after a refit 20.7-21.2 ms, no garbage collection: part of
  the gap between a loop and the benchmark is the update reading its state from memory after the scoring and the
  refit evicted it. ItemKNN in a loop (update, then refit, chunks 0-9, load 1.2): 0.125 of the refit time; the
  chunks 2018-01..03 (700-900 touched items) take 140-190 ms, their touched top-k alone 56 ms.
  Tried and not kept: ranking a touched row's new similarities only where they reach its new similarity to the
  least similar of its old neighbours (a value its `depth`-th new one reaches; exact values): touched top-k
  20.8 -> 16.6 ms (chunk 2017-12) and 56 -> 41 ms (2018-01), but the loop's updates moved within the noise
  (103-233 ms against 118-185 ms); the whole `knn_prune_update` both ways in one process (8 alternated calls,
  medians, load 2.1): 85 -> 80 ms (2017-12), 147 -> 123 ms (2018-01), 168 -> 203 ms (2018-02, 1,131 touched: the
  old neighbours' values fell, more candidates and more rows ranked in full); same values and bounds, but tied
  neighbours came out in another order than a full `torch.topk` (328-666 rows' index lists differ).
Then (commits 5ef328e .. c46bf26, 2026-12-01 17:50-18:15 UTC, load 0.8-4.5):

- **ItemKNN**: `knn_prune_update` runs its two selections as numba loops (`hf_recsys_classic/_knn_kernel.py`,
  the plugin's `fast` extra; `kernel="auto"` picks them when numba is installed and the `(n, |T|)` block has at
  least 1M entries, else the torch path, which stays and is tested equal: same values and bounds on random data).
  The touched rows' top-k reads the block once, row by row, with one min-heap of `depth` slots per touched column
  and a per-column entry value kept in its own array; a column whose old list was full starts from a floor: its
  new similarity to the least similar of its `depth` old neighbours (any `depth` rows bound the `depth`-th value
  from below, so only values reaching it are ranked: exact). The merge is one pass over each untouched row (its
  kept neighbours that did not move, then its hits against its bound, merged as two best-first lists), and the
  shrink division one pass. Chunk 2018-01 (867 touched of 8.9k items, warm calls, load 2-3): touched top-k 54 ms
  (`torch.topk` on the view) -> 37 ms (heap) -> 21 ms (+ entry-value array) -> 17.5 ms (+ floor; 44% of its
  columns had a full old list); chunk 2017-12 (436 touched, 91% full): 4.9 ms with the floor, 10 ms without.
  The whole `knn_prune_update` 2018-01 under cProfile: 102 ms (first numba version) -> 54 ms (floor, one-pass
  division); per chunk in a loop (load 2.1): 20-75 ms, against 60-240 ms before. The first update in a process
  also loads the compiled loops from numba's cache (0.1-0.5 s, counted in the benchmark's first chunk); a fresh
  clone compiles them once (about 8 s). Tried and not kept: candidate buffers of `2 depth` per column compacted
  by `np.partition` instead of heaps (20 ms vs 17.5 ms), and the same by 64-column tiles (28-35 ms).
- **UserKNN** runs the torch path under `auto` (its blocks have about 610 x 14 entries): with the numba loops
  its steady updates were the same (4.5-17 ms both ways, A/B in one process) and the first one paid 0.45 s of
  loading.
- **MostPopular**: the shared path step by step inside a benchmark-like loop (score, update, refit; load 3.1):
  Arrow table 0.33-0.54 ms, log check 0.10-0.14, vocabulary growth 0.55-0.87 (2.4 once), encoding 0.09-0.24,
  seen-items merge 0.42-0.70, the hook 0.15-0.26, the finite check 0.08-0.11 (2-2.8 ms in all, refits 17-21 ms,
  no garbage collection in any update). The same steps warm, repeated on one chunk: 78, 33, 250, 69, 289, ~95 and
  11 us (0.8 ms): the benchmark's update costs about 3x its warm cost, spread over every step (cold caches after
  the scoring and the refit, as found before), not one step or one allocation. Tried and not kept: splicing the
  new pairs into the seen-items index array (only the touched rows searched) instead of `seen + new`: 356-678 us
  against 300-588 us, A/B in one process.
- **BPRMF**: the options were chosen again on the validation stream with 3 and with 5 config seeds
  (`tune_bpr_partial_fit.py --seeds 5`, best mean): the same choice (replay 1.0, 30 epochs, lr 0.02; validation
  NDCG@10 0.0465, std 0.0029 over 5 seeds); the benchmark now runs the test chunks under the same seeds
  (`--seeds 5`, section above): per-seed partial/refit ratios spread over about +-0.07, so one seed's ratio does
  not say whether the target is met; the mean over seeds does.
- **runs** (this round): ItemKNN at 5ef328e (first numba version, load 0.8) 0.0997; at 59dc5aa (load 2.2) 0.084;
  at 1f89f9f after MostPopular in the same process (load 4.4) 0.138, its first update 0.74 s (numba's import and
  cached loops), the other nine 0.50 s against 8.0 s of refits (0.062); at 6e5980e alone (load 4.1) 0.0885, the
  first update 0.30 s, the other nine 0.056 of their refits. UserKNN (torch path) 0.093-0.109 (5-8 ms updates,
  47-67 ms refits: its refits are faster than in the runs at a67fcdc, 57-117 ms). MostPopular at 1f89f9f (load
  4.4) 0.119: 1.7-2.3 ms, and 6.0-7.2 ms in chunks 1, 3 and 5, against 24-38 ms.
- **BPRMF seeds** (test chunks, 5 config seeds, load 3.5-4.4): with the options chosen first (30 epochs) the mean
  partial/refit ratio 0.962 (per seed 0.88-1.09, std 0.079; 3 seeds alone gave 1.008); with the wider validation
  grid's choice (60 epochs, validation 0.0476 against 0.0465: within one standard deviation) 0.942 (per seed
  0.92-0.97, std 0.017). The benchmark keeps the validation choice (60 epochs); neither reaches 0.97 on the mean.
- **CPU time** (from c46bf26 the benchmark records each update's process CPU time beside its wall time, a column
  of the table above): at c46bf26 (load 2.8) MostPopular's updates took 2.1-2.7 ms, CPU time equal to wall time in
  every one, against refits of 16-25 ms: no 6 ms chunk in that run, and no preemption; so the 0.12 is the shared
  path's own work against a refit that takes 16-25 ms here. UserKNN the same (CPU = wall). ItemKNN: the first
  update 0.37 s wall, 0.29 s CPU. The same code before this round against after (UserKNN, `_utils.py` of a550f74
  swapped in, alternated runs, load 3.3-3.4): 0.0934 / 0.0935 against 0.0834 / 0.1048.

Then (commits 305ea4a .. 3eb8a4c, 2026-12-01 21:11-21:45 UTC, load 0.9-3.2; every run below with `nice -n 10`, torch
1 thread; "wall / CPU" are the update/refit time ratios of one benchmark run):

- **shared path**, timed step by step inside a benchmark-like loop (score, update, refit; MostPopular, 3 x 10
  chunks, medians): at 305ea4a (load 2.7) Arrow table 0.51 ms, log check 0.13, vocabulary growth 0.79, encoding
  0.17, seen-items merge 0.59, the hook 0.31, the finite check 0.14 (whole update 2.58 ms, refit 21.5 ms, 0.120). Now
  (3eb8a4c, load 2.6): 0.37, 0.07, growth and encoding together 0.54, merge 0.51, hook 0.14, check 0.14 (whole 1.92
  ms, refit 21.0 ms, 0.085). What changed: (1) one lookup per id column: `IdVocab.extend_encode` finds the unseen ids
  by one binary search, appends them in order of first appearance and encodes them by their rank among them (was:
  a lookup to find them, `extend`, then `encode` of the whole column again), and its sorted copy of the ids takes
  the new ones by one mask instead of two `np.insert` and a second sort (warm, chunk 2017-12: about 196 -> 107 us);
  (2) pandas' numeric numpy-backed columns reach Arrow through their numpy array (`pa.array` of a Series 29 us
  a column, `to_numpy` then `pa.array` about 11 us; NaN still becomes null), and `_column` reads an Arrow table's
  column by its field index without concatenating a one-chunk column (7.4 -> 1.6 us, 10 reads an update); (3)
  MostPopular's counts are added in numpy (the same float64 sums); (4) `merge_seen` splices the pairs not seen
  before into the old index array in one vectorised pass: only the touched rows' old entries are searched (one
  `searchsorted` over their keys), one boolean mask places the new columns, one CSR is built (warm 251 -> 163 us;
  in the loop, both merges on the same state in random order, medians: MostPopular 0.70 -> 0.58 ms, UserKNN 0.47
  -> 0.46 ms), tested equal to the sparse sum on random cases; it takes the old way when the seen matrix is not
  canonical. The same MostPopular update repeated warm: 0.63 ms (5ded735) -> 0.39 ms.
- **UserKNN / KNN updates** (`knn_prune_update`): the unit rows by one pass over the non-zeros instead of
  `sp.diags(1 / norms) @ x` (bitwise the same lists on the 13 KNN updates compared, binary rows: 30.5 -> 28.3 ms for
  UserKNN's 10), and `row_norms` by `x.power(2)` instead of `x.multiply(x)` (the same float32 squares; 396 -> 97 us
  on a 600 x 9000 matrix; it serves the fits too). UserKNN in the loop (9fb517d, load 2.0): the shared path 1.4 ms,
  the hook 2.7 ms, the whole update 4.25 ms against a 50 ms refit (0.084). Tried and not kept: the similarity block
  as a sparse-times-sparse product (`(scaled @ scaled[T].T).toarray()`, equal values on binary rows): UserKNN 2.3-2.5
  ms against 0.42-0.45 ms dense, ItemKNN 48-66 ms against 6-19 ms; the new pairs' CSR built from sorted keys instead
  of `to_csr` and `maximum` instead of `+` then `data[:] = 1` (242 against 252 us warm).
- **runs**, MostPopular and UserKNN in one process (wall / CPU): f5e3992 (load 2.3) 0.097 / 0.097 and 0.091 / 0.091;
  ba23d1b (2.8) 0.123 / 0.107 and 0.085 / 0.080, 0.093 / 0.095 and 0.113 / 0.093; 9fb517d (3.2) 0.097 / 0.105 and
  0.086 / 0.073, 0.086 / 0.087 and 0.090 / 0.091, 0.107 / 0.112 and 0.099 / 0.090; 7cdefb2 (1.7-2.4) 0.117 / 0.102
  and 0.078 / 0.081, 0.113 / 0.113 and 0.086 / 0.086, 0.100 / 0.102 and 0.084 / 0.085, 0.106 / 0.105 and 0.095 /
  0.093 (then ItemKNN in the same process 0.129, its first update 0.60 s); 3eb8a4c (2.4-2.5) 0.087 / 0.087 and
  0.081 / 0.081, 0.094 / 0.094 and 0.086 / 0.087, 0.085 / 0.087 and 0.082 / 0.086 (the run in the table).
  Alternated with the code before (5ded735, 5 pairs, load 1.7-2.5): MostPopular 0.124 / 0.124, 0.109 / 0.112,
  0.135 / 0.138, 0.122 / 0.122, 0.111 / 0.111 against 0.097 / 0.097, 0.105 / 0.107, 0.101 / 0.101 (7cdefb2), 0.082 /
  0.082, 0.100 / 0.080 (3eb8a4c); UserKNN CPU 0.110, 0.107, 0.103, 0.094, 0.095 against 0.080, 0.083, 0.088, 0.085,
  0.086 (its wall ratios, 0.059-0.113, moved with preempted refits). ItemKNN alone at 3eb8a4c (load 2.4-2.6): 0.098
  / 0.097, the first update 0.28 s (numba's loops loaded), the other nine 0.061 of their refits (0.60-0.70 s, faster
  than before: `row_norms`).
- **BPRMF**: `partial_fit(replay_from=...)` samples the replay from every old row (`"all"`, as before: the
  validation rows of the earlier grid came out the same, 0.0465 and 0.0476) or only from the old rows of the
  touched users (`"touched_users"`), items (`"touched_items"`) or either (`"touched"`). On the validation stream
  (`tune_bpr_replay_from.md`, 5 seeds, 24 option sets, load 1.2-2.3; `tune_bpr_replay_from_wide.md`, 12 more):
  the touched users' rows alone were worse than uniform (0.036-0.042 against 0.042-0.048), the touched items' rows
  better (0.050-0.057), both together best: replay 4.0, 60 epochs, lr 0.02, 0.0590 (std 0.0076; replay 8 / 120
  epochs 0.0588, 2.0 / 60 0.0550). The test chunks with that choice, 5 seeds (adf450a, load 2.3-3.1): per seed
  1.056, 1.040, 1.053, 0.990, 1.079 of the refit (mean 1.043, std 0.030; mean NDCG 0.0622 against 0.0597), against
  0.942 with uniform replay; the update / refit time ratio 0.070 (seed 0).

Then (commit 10d787b, 2026-12-02, an idle AMD EPYC, load 0.6-0.8, one torch thread):

- **ItemKNN / UserKNN with `update_cache=True`**: the fit keeps the dense co-occurrence counts and the update
  (`knn_count_update`) adds the new pairs to them and rebuilds only the lists they move; the refits in the table
  are now the plain configs (`k`, `shrink`; no reserve, no counts), the fastest refit. ItemKNN 0.073 and 0.074 over
  two runs (0.50 s for 10 updates against 6.74 s), UserKNN 0.088-0.093 over four. Per chunk (ItemKNN): 20-40 ms for
  light chunks, 70-120 ms for 2018-02 (1,169 new pairs whose users' histories make 2.1M count updates; of a
  one-thread 120 ms, the counts 22 ms, the lists the rest: each touched row weighs every row its new pairs meet).
  Steps on the way (same machine): the moved pairs first materialised as (row, row) arrays and sorted, 0.38 s in
  `argsort` on the heavy chunk; then per row from the rows' columns (a pass over `x`: the transposed copy per update);
  then every changed list re-heaped (40 ms on a light chunk), now the kept entries stay sorted and only the moved
  ones are sorted and merged (25 ms). The update's loops load in `fit` (`_knn_counts.warm_up`, about 30 ms once per
  process), not in the first update. UserKNN's update is now about half the shared path (about 3 ms: the log
  check, vocabulary growth, encoding, the seen-items merge; MostPopular's update is that alone) and half its own
  (the users of the touched items by one pass over the seen matrix 0.5-1 ms, the kernel 0.7-1.4 ms).

Then (commit 5dec221, 2026-12-02 17:35-18:40 UTC, an idle AMD EPYC (1 MiB L2 per core, 32 MiB L3), load 0.1-1.0,
the benchmark alone, one torch thread; each run `partial_fit.py --families most_popular` from a copy of the tree):

- **MostPopular, code or machine?** 46db989 (0.083 on the machine of 2026-12-01) and 5dec221 alternated run by run
  on this machine, 4 pairs: 0.107, 0.099, 0.116, 0.107 against 0.112, 0.110, 0.107, 0.095. ef47386 against 5dec221,
  1 pair: 0.114 against 0.113. So the code did not move it (the new-pairs hand-over and the signature look-up cost
  nothing measurable); this machine did. Over the day's 29 MostPopular runs (these trees and the variants
  below): 0.091-0.116 (about 0.104 on average); the full solver rerun at 5dec221 gave 0.096.
- **Where its 3 ms go.** The same update in a tight loop takes 1.7-2.0 ms; after the scoring and a refit, or after
  streaming 32 MB through the caches, every step costs 1.5-3x its warm time (Arrow table from pandas 0.63 ms, log
  check 0.12, vocabulary growth 0.87, seen-items merge 0.73, the counts 0.23, the finite check 0.18; medians over
  30 in-context updates), against a 25-31 ms refit. No step dominates: the update is about 100 numpy / Arrow /
  pandas / torch calls of 5-50 us each, and each one starts cold. Tried and not kept (no change beyond the run-to-run
  spread; 4 alternated pairs, the allocators 2 runs each): one pass over the modules for the finite check and
  `requires_grad_`; `_column` testing for an Arrow table first; the system allocator or jemalloc for Arrow instead of
  mimalloc; glibc without trimming or mmap (`MALLOC_TRIM_THRESHOLD_`, `MALLOC_MMAP_THRESHOLD_`).
- **`unique`** (`hf_recsys/data/arrays.py`, kept): numpy 2.4.6's `np.unique` of an integer array goes through a
  hash table and is slow at every size measured here (536 ids: 49 us against 8 us by a sort; 5,000: 709 against 65
  us; 1M: 0.5-1.3 s against 0.03 s); the update path, the splits, the evaluator and the KNN / ALS / EASE updates
  now take their unique ids by one sort (tested equal to `np.unique`, index and inverse included). In the tight
  loop the MostPopular update went 1.86 -> 1.68 ms and its refit 25.3 -> 23.8 ms (30 alternated rounds, the two
  functions swapped in one process), so the ratio stayed where it was.

Then (commits 817a555 and 3e104e8, whose online code is the same; 2026-12-02 23:00 and 2026-12-03 07:27 UTC, another
AMD EPYC: Zen 3 without AVX-512, the benchmark alone, one torch thread):

- **MostPopular** at 817a555, 7 runs on the idle machine (2026-12-02): 0.0846, 0.0799, 0.0873, 0.0830, 0.0859, 0.0930,
  0.0849 (refits 21-24 ms, updates 1.7-2.1 ms a chunk). With the 0.091-0.116 of the machine of 2026-12-02 above,
  the ratio depends on the machine: its update is the shared path's fixed cost against a 20-30 ms refit.
- **Full solver rerun at 3e104e8** (load 0.2 before, 1.0 after; the table at the top): MostPopular 0.080, ALS 0.081,
  ItemKNN 0.039, UserKNN 0.076, EASE 0.049, every one within 1/10 of its refit; NDCG partial/refit as before (1.000
  exact for MostPopular, the KNNs and EASE; 1.03 for ALS). A run with two torch threads beside a one-thread ML-1M job,
  a few minutes earlier, gave 0.078, 0.078, 0.034, 0.088 and 0.058 (not kept: the table's protocol is one thread).
"""


def commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    except OSError:  # pragma: no cover
        return "n/a"


def run_family(name: str, log: pd.DataFrame, num_chunks: int, seed: int | None = None) -> dict:
    config, fit_kwargs, pf_kwargs = FAMILIES[name]
    config = config if seed is None else config | {"seed": seed}
    refit_config = {k: v for k, v in config.items() if k not in UPDATE_ONLY_OPTIONS}
    result = streaming_evaluation(
        lambda: AutoModelForRecommendation.for_model(name, **config),
        log,
        num_chunks=num_chunks,
        freq="MS",
        ks=(10,),
        metrics=("ndcg", "recall"),
        fit_kwargs=fit_kwargs,
        partial_fit_kwargs=pf_kwargs,
        show_progress=True,
        make_refit_model=lambda: AutoModelForRecommendation.for_model(name, **refit_config),
    )
    out = result.to_dict()
    out["config"], out["partial_fit_kwargs"], out["refit_config"] = config, pf_kwargs, refit_config
    return out


def cpu_ratio(summary: dict) -> float:
    """The updates' process CPU time over the refits' (runs from 2026-12-01 18:15 on; NaN before): the wall-time
    ratio without the time the process was preempted by other jobs."""
    pf, rf = (summary[k].get("update_cpu_seconds") for k in ("partial_fit", "refit"))
    return pf / rf if pf is not None and rf else float("nan")


def family_row(name: str, res: dict) -> dict:
    s = res["summary"]
    rows = pd.DataFrame(res["rows"])
    pf, rf = (rows[rows.strategy == k].reset_index(drop=True) for k in ("partial_fit", "refit"))
    ratio = s["partial_fit"]["ndcg@10"] / s["refit"]["ndcg@10"] if s["refit"]["ndcg@10"] else float("nan")
    time_ratio = s["partial_fit"]["update_seconds"] / s["refit"]["update_seconds"]
    solver = name in SOLVER_FAMILIES
    return {
        "family": name,
        "ndcg@10 none": s["none"]["ndcg@10"],
        "ndcg@10 partial_fit": s["partial_fit"]["ndcg@10"],
        "ndcg@10 refit": s["refit"]["ndcg@10"],
        "partial / refit NDCG": ratio,
        "max chunk |gap|": float((pf["ndcg@10"] - rf["ndcg@10"]).abs().max()),
        "partial_fit s (10 updates)": s["partial_fit"]["update_seconds"],
        "refit s (10 refits)": s["refit"]["update_seconds"],
        "time ratio": time_ratio,
        "CPU time ratio": cpu_ratio(s),
        "targets met": ("yes" if ratio >= 0.97 and time_ratio <= 0.1 else "no") if solver else "n/a (gradient)",
    }


def seed_row(seed: int, res: dict) -> dict:
    s = res["summary"]
    row = {"seed": seed} | {f"ndcg@10 {k}": s[k]["ndcg@10"] for k in ("none", "partial_fit", "refit")}
    return row | {"partial / refit NDCG": s["partial_fit"]["ndcg@10"] / s["refit"]["ndcg@10"]}


def seeds_section(name: str, rows: list[dict]) -> list[str]:
    """Per-seed NDCG of a gradient family's strategies, with their mean and standard deviation."""
    df = pd.DataFrame(rows)
    lines = [f"### {name}: {len(df)} config seeds (same chunks, options and protocol)", ""]
    lines += ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for _, r in df.iterrows():
        lines.append(f"| {int(r['seed'])} | " + " | ".join(f"{v:.4f}" for v in r.to_numpy()[1:]) + " |")
    mean, std = df.iloc[:, 1:].mean(), df.iloc[:, 1:].std(ddof=0)
    lines.append("| mean (std) | " + " | ".join(f"{m:.4f} ({d:.4f})" for m, d in zip(mean, std)) + " |")
    ratio = mean["ndcg@10 partial_fit"] / mean["ndcg@10 refit"]
    return lines + ["", f"Mean partial_fit NDCG over mean refit NDCG: {ratio:.4f}.", ""]


def markdown(results: dict, meta: dict) -> str:
    any_res = next(iter(results.values()))
    chunk_rows = [r for r in any_res["rows"] if r["strategy"] == "partial_fit"]
    n_chunks, n_chunk, n_warm = (
        len(chunk_rows),
        sum(r["num_interactions"] for r in chunk_rows),
        any_res["warmup_interactions"],
    )
    first, last = chunk_rows[0]["start"][:7], chunk_rows[-1]["start"][:7]
    lines = [
        "# partial_fit vs full refit on ml-latest-small, 10 monthly chunks (prequential)",
        "",
        f"Last run of `benchmarks/online/partial_fit.py` on {meta['date']} at commit {meta['commit']}; {meta['cpu']}, "
        f"{meta['cores']} cores shared with other jobs (load average {meta['load_before']} before, "
        f"{meta['load_after']} after); torch {meta['torch']}, {meta['torch_threads']} thread(s). Families may come "
        "from separate runs: each section below gives its own date, commit and load; the two strategies of a family "
        "always ran in the same process, interleaved chunk by chunk, so their time ratio shares the load.",
        "",
        f"Chunks: the last {n_chunks} calendar months ({first} .. {last}, {n_chunk:,} interactions); warm-up: the "
        f"{n_warm:,} earlier interactions. NDCG@10 is each chunk's (over the chunk's users known before it: 9-14 a "
        "chunk, so single chunks are noisy; the strategies are compared on the same users), averaged over chunks "
        "weighted by the users evaluated. Times are the sum of the 10 updates (partial_fit) or of the 10 full fits "
        "(refit); the first EASE update also recovers P from B (from commit 95516b2 on: from B and the diagonal of P "
        "kept by fit, O(n^2); before: one Gram matrix). ItemKNN's partial/refit NDCG need not be exactly 1: the "
        "updated lists hold the refit's similarity values, but where several neighbours tie at the k-th value a "
        "different one of them may be kept (both are top-k lists of the same similarities).",
        "",
    ]
    rows = [family_row(n, r) for n, r in results.items()]
    header = list(rows[0])
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            f"{v:.4f}" if isinstance(v, float) and "s (" not in k else (f"{v:.2f}" if isinstance(v, float) else str(v))
            for k, v in r.items()
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for name, res in results.items():
        if res.get("seeds"):
            lines += seeds_section(name, res["seeds"])
    lines += [PROFILE_NOTES, "## per chunk", ""]
    for name, res in results.items():
        df = pd.DataFrame(res["rows"])
        values = ["ndcg@10", "update_seconds"] + (["update_cpu_seconds"] if "update_cpu_seconds" in df else [])
        wide = df.pivot(index="start", columns="strategy", values=values)
        run = res.get("run", {})
        refit = res.get("refit_config", res["config"])
        refit = "" if refit == res["config"] else f", refit {refit}"
        lines += [f"### {name} (config {res['config']}, partial_fit {res['partial_fit_kwargs']}{refit})", ""]
        lines += [
            f"Run {run.get('date', '?')} at commit {run.get('commit', '?')}, load average "
            f"{run.get('load_before', '?')} before, {run.get('load_after', '?')} after.",
            "",
        ]
        cols = [f"{m} {s}" for m, s in wide.columns]
        lines += ["| chunk start | users | " + " | ".join(cols) + " |", "|" + "---|" * (len(cols) + 2)]
        users = df[df.strategy == "partial_fit"].set_index("start")["num_evaluated"]
        for start, row in wide.iterrows():
            cells = [f"{v:.4f}" for v in row.to_numpy(dtype=float)]
            lines.append(f"| {start} | {users[start]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default=",".join(FAMILIES))
    parser.add_argument("--chunks", type=int, default=10)
    parser.add_argument(
        "--seeds", type=int, default=1, help="gradient families: also run the config seeds 1 .. N-1 (mean and spread)"
    )
    parser.add_argument("--markdown-only", action="store_true", help="rewrite partial_fit.md from the JSON")
    args = parser.parse_args()
    out_json = HERE / "partial_fit.json"
    saved = json.loads(out_json.read_text()) if out_json.exists() else {"results": {}}
    if args.markdown_only:
        (HERE / "partial_fit.md").write_text(markdown(saved["results"], saved["meta"]) + "\n")
        return
    log = load_ratings().drop(columns="rating")
    meta = machine() | {"load_before": load_average(), "commit": commit()}
    for name in args.families.split(","):
        print(f"== {name}", flush=True)
        saved["results"][name] = run_family(name, log, args.chunks) | {"run": meta | {"load_after": load_average()}}
        if args.seeds > 1 and name not in SOLVER_FAMILIES:  # the same run under other config seeds
            runs = [saved["results"][name]]
            runs += [run_family(name, log, args.chunks, seed) for seed in range(1, args.seeds)]
            saved["results"][name]["seeds"] = [seed_row(seed, r) for seed, r in enumerate(runs)]
            saved["results"][name]["run"]["load_after"] = load_average()
        out_json.write_text(json.dumps(saved, indent=1, default=str))
    meta["load_after"] = load_average()
    meta["date"] = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    saved["meta"] = meta
    out_json.write_text(json.dumps(saved, indent=1, default=str))
    (HERE / "partial_fit.md").write_text(markdown(saved["results"], meta) + "\n")
    print((HERE / "partial_fit.md").read_text())


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
