"""The ``hf-recsys`` command line: plugins, data inspect|split, fit, evaluate, recommend, push.

Run ``hf-recsys --help`` or ``python -m hf_recsys.cli --help``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

logger = logging.getLogger("hf_recsys.cli")

SPLITS = ("leave_last_out", "temporal_user", "global_temporal", "random")


def _parse_mapping(pairs: Sequence[str] | None, what: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        for item in pair.split(","):
            if "=" not in item:
                raise SystemExit(f"error: {what} entries look like key=value, got {item!r}")
            key, value = item.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _load(path: str, args: argparse.Namespace):
    from .data import load_interactions

    kwargs: dict[str, Any] = {"columns": _parse_mapping(args.columns, "--columns") or None}
    if getattr(args, "sep", None):
        kwargs["sep"] = args.sep
    if getattr(args, "duplicates", None):
        kwargs["duplicates"] = args.duplicates
    return load_interactions(path, **kwargs)


def _add_data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--columns", nargs="*", help="canonical=source column names, e.g. user_id=userId item_id=movieId")
    p.add_argument("--sep", help="field separator for delimited text files (default: by extension)")
    p.add_argument("--duplicates", choices=("error", "first", "last", "mean", "keep"), help="duplicate-row policy")


# ---------------------------------------------------------------------------------------------- commands
def cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import list_models, plugin_errors

    models = list_models()
    width = max([len(n) for n in models] + [10])
    print(f"{'model_type':<{width}}  {'distribution':<22}  model class")
    for name, spec in models.items():
        print(
            f"{name:<{width}}  {spec.distribution or '(code)':<22}  "
            f"{spec.model_class.__module__}.{spec.model_class.__name__}"
        )
    errors = plugin_errors()
    if errors:
        print("\nplugins that failed to load:")
        for name, err in errors.items():
            print(f"  {name} (distribution {err.distribution}): {err.error}")
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    import numpy as np

    ds = _load(args.path, args)
    users, items = np.unique(ds["user_id"]), np.unique(ds["item_id"])
    n = len(ds)
    print(f"source:        {args.path}")
    print(f"columns:       {', '.join(ds.column_names)}")
    print(f"interactions:  {n:,}")
    print(f"users:         {len(users):,}")
    print(f"items:         {len(items):,}")
    print(f"density:       {n / max(len(users) * len(items), 1):.4%}")
    if "rating" in ds.column_names:
        r = np.asarray(ds["rating"], dtype=float)
        print(f"rating:        min {r.min():g}, mean {r.mean():.3f}, max {r.max():g}")
    if "timestamp" in ds.column_names:
        import pandas as pd

        t = np.asarray(ds["timestamp"])
        print(f"time span:     {pd.to_datetime(t.min(), unit='s')} .. {pd.to_datetime(t.max(), unit='s')}")
    return 0


def _split(ds, args: argparse.Namespace):
    from . import data

    if args.method == "leave_last_out":
        return data.leave_last_out(ds, n_test=args.n_test, n_validation=args.n_validation)
    if args.method == "temporal_user":
        return data.temporal_user_split(ds, test_ratio=args.test_ratio, validation_ratio=args.validation_ratio)
    if args.method == "global_temporal":
        return data.global_temporal_split(ds, test_ratio=args.test_ratio)
    return data.random_split(ds, test_ratio=args.test_ratio, validation_ratio=args.validation_ratio, seed=args.seed)


def cmd_data_split(args: argparse.Namespace) -> int:
    ds = _load(args.path, args)
    if args.kcore:
        from .data import kcore_filter

        ds = kcore_filter(ds, user_k=args.kcore, item_k=args.kcore)
    parts = _split(ds, args)
    os.makedirs(args.output, exist_ok=True)
    for name, part in parts.items():
        path = os.path.join(args.output, f"{name}.parquet")
        part.to_parquet(path)
        print(f"{name:<11} {len(part):>10,} rows -> {path}")
    return 0


def _config_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            kwargs.update(json.load(f))
    kwargs.update({k: _parse_value(v) for k, v in _parse_mapping(args.set, "--set").items()})
    return kwargs


def cmd_fit(args: argparse.Namespace) -> int:
    from .auto import AutoModelForRecommendation

    model = AutoModelForRecommendation.for_model(args.model_type, **_config_kwargs(args))
    from .hub import record_dataset

    train = _load(args.train, args)
    model.fit(train)
    record_dataset(model, train, name=args.dataset_name or os.path.basename(args.train), source=args.train)
    model.save_pretrained(args.output)
    print(
        f"fitted {args.model_type} on {len(train):,} interactions "
        f"({model.config.num_users:,} users, {model.config.num_items:,} items) -> {args.output}"
    )
    return 0


def _load_model(path: str, revision: str | None = None):
    from .hub import load_model

    return load_model(path, **({"revision": revision} if revision else {}))


def cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import evaluate_model

    model = _load_model(args.model)
    train, test = _load(args.train, args), _load(args.test, args)
    result = evaluate_model(model, train, test, ks=tuple(args.k), rating_metrics=args.rating_metrics)
    print(result.to_markdown())
    if args.record:
        from .hub import record_evaluation

        record_evaluation(model, result)
        model.save_pretrained(args.model)
        print(f"evaluation recorded in {args.model}/config.json (it goes into the model card)")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            json.dump(result.to_dict(), f, indent=2)
        print(f"metrics -> {args.output}")
    return 0


def _read_user_list(args: argparse.Namespace, model) -> list:
    if args.users:
        users: list = list(args.users)
    elif args.users_file:
        with open(args.users_file, encoding="utf-8") as f:
            users = [line.strip() for line in f if line.strip()]
    else:
        return model.user_vocab.ids.tolist()
    if model.user_vocab.dtype == "int64":  # command-line ids arrive as text
        try:
            users = [int(u) for u in users]
        except ValueError as exc:
            raise SystemExit(f"error: this model's user ids are integers: {exc}") from None
    return users


def cmd_recommend(args: argparse.Namespace) -> int:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    model = _load_model(args.model, args.revision)
    users = _read_user_list(args, model)
    chunks = []
    step = args.batch_size
    for start in tqdm(range(0, len(users), step), desc="recommend", unit="batch", disable=len(users) <= step):
        batch = users[start : start + step]
        ids, scores = model.recommend(batch, k=args.k, exclude_seen=not args.include_seen, batch_size=step)
        k = ids.shape[1]
        chunks.append(
            pa.table(
                {
                    "user_id": pa.array(np.repeat(np.asarray(batch, dtype=object), k).tolist()),
                    "item_id": pa.array(ids.ravel().tolist()),
                    "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), len(batch))),
                    "score": pa.array(scores.ravel()),
                }
            )
        )
    table = pa.concat_tables(chunks)
    if args.output is None:
        print(table.to_pandas().to_string(index=False))
    elif args.output.endswith(".csv"):
        pacsv.write_csv(table, args.output)
    else:
        pq.write_table(table, args.output)
    if args.output:
        print(f"{table.num_rows:,} recommendations for {len(users):,} users -> {args.output}")
    return 0


def cmd_push(args: argparse.Namespace) -> int:
    from .hub import push_to_hub

    model = _load_model(args.model)
    eval_results = None
    if args.eval_results:
        with open(args.eval_results, encoding="utf-8") as f:
            eval_results = json.load(f)
    card = {k: v for k, v in (("base_model", args.base_model), ("license", args.license)) if v}
    info = push_to_hub(
        model,
        args.repo_id,
        eval_results=eval_results,
        revision=args.revision,
        private=args.private or None,
        token=args.token,
        commit_message=args.commit_message,
        **card,
    )
    print(f"pushed {args.model} -> {info.commit_url}")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hf-recsys", description="Recommender systems on the Hugging Face stack.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list registered models and the distributions that provide them")
    p.set_defaults(func=cmd_plugins)

    data = sub.add_parser("data", help="inspect or split an interaction log").add_subparsers(
        dest="data_command", required=True
    )
    p = data.add_parser("inspect", help="sizes, density, rating and time ranges of a log")
    p.add_argument("path")
    _add_data_args(p)
    p.set_defaults(func=cmd_data_inspect)
    p = data.add_parser("split", help="split a log into train/validation/test Parquet files")
    p.add_argument("path")
    p.add_argument("--method", choices=SPLITS, default="leave_last_out")
    p.add_argument("--output", required=True, help="folder for train/validation/test.parquet")
    p.add_argument("--n-test", type=int, default=1, help="leave_last_out: test interactions per user")
    p.add_argument("--n-validation", type=int, default=0, help="leave_last_out: validation interactions per user")
    p.add_argument("--test-ratio", type=float, default=0.2)
    p.add_argument("--validation-ratio", type=float, default=0.0)
    p.add_argument("--kcore", type=int, default=0, help="k-core filter users and items before splitting")
    p.add_argument("--seed", type=int, default=0)
    _add_data_args(p)
    p.set_defaults(func=cmd_data_split)

    p = sub.add_parser("train", help="train a model under Accelerate (see `hf-recsys train --help`)", add_help=False)
    p.set_defaults(func=lambda args: cmd_train([]))

    p = sub.add_parser("fit", help="fit a model that needs no gradient training (MostPopular, EASE, ItemKNN, ALS...)")
    p.add_argument("--model-type", required=True, help="registry key, see `hf-recsys plugins`")
    p.add_argument("--train", required=True, help="training log (CSV/TSV/Parquet/JSONL/datasets folder)")
    p.add_argument("--output", required=True, help="folder to save_pretrained into")
    p.add_argument("--config", help="JSON file of config options")
    p.add_argument("--set", nargs="*", help="config overrides key=value (values parsed as JSON)")
    p.add_argument("--dataset-name", help="name of the training data for the model card (default: file name)")
    _add_data_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="full-ranking evaluation of a saved model")
    p.add_argument("--model", required=True, help="saved model folder or Hub repo id")
    p.add_argument("--train", required=True, help="the training log (its items are masked)")
    p.add_argument("--test", required=True, help="the test log")
    p.add_argument("--k", type=int, nargs="+", default=[10])
    p.add_argument("--rating-metrics", action="store_true", help="also RMSE/MAE of predicted ratings")
    p.add_argument("--output", help="write metrics as JSON")
    p.add_argument("--record", action="store_true", help="store the results in the saved model for its model card")
    _add_data_args(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("recommend", help="top-K recommendations as Parquet/CSV (user_id, item_id, rank, score)")
    p.add_argument("--model", required=True, help="saved model folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--users", nargs="*", help="user ids (default: every user in the model's vocabulary)")
    p.add_argument("--users-file", help="file with one user id per line")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--include-seen", action="store_true", help="do not exclude items seen in training")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--output", help=".parquet or .csv (default: print)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("push", help="push a saved model to the Hub in one commit, with a generated model card")
    p.add_argument("model", help="saved model folder")
    p.add_argument("repo_id", help="Hub repo id, org/name")
    p.add_argument("--revision", help="branch to push to (created if missing)")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--token", help="Hub token (default: the logged-in one)")
    p.add_argument("--commit-message")
    p.add_argument("--eval-results", help="metrics JSON written by `hf-recsys evaluate --output`")
    p.add_argument("--base-model", help="Hub id of the backbone, for the card (backbone models)")
    p.add_argument("--license", help="license for the card, e.g. apache-2.0")
    p.set_defaults(func=cmd_push)

    from .serving import add_serve_parser

    add_serve_parser(sub)  # hf-recsys serve MODEL (hf_recsys/serving)
    return parser


TRAIN_USAGE = """usage: hf-recsys train [CONFIG.yaml|CONFIG.json] [--option value ...]

Train a gradient-trained model under Accelerate (also as `accelerate launch -m hf_recsys.cli train ...` or
`torchrun --nproc_per_node N -m hf_recsys.cli train ...`). Options come from the config file (flat mapping of
option: value) and are overridden by the command line. The options:
"""


def cmd_train(argv: Sequence[str]) -> int:
    """``hf-recsys train [config] [--option value ...]``."""
    from .training.arguments import ARGUMENT_CLASSES, parse_train_args

    argv = list(argv)
    if argv and argv[0] in ("-h", "--help"):
        from transformers import HfArgumentParser

        print(TRAIN_USAGE)
        HfArgumentParser(ARGUMENT_CLASSES).print_help()
        return 0
    config = argv.pop(0) if argv and not argv[0].startswith("-") else None
    from .training.run import run_train

    run_train(*parse_train_args(argv, config_file=config))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose, argv = True, argv[1:]
    if argv and argv[0] == "train":
        logging.basicConfig(
            level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        logging.getLogger("hf_recsys.training").setLevel(logging.INFO)
        from .training.trainer import TrainingInterrupted

        try:
            return cmd_train(argv[1:])
        except TrainingInterrupted as exc:
            print(f"interrupted: {exc}", file=sys.stderr)
            return 143  # 128 + SIGTERM, as a process killed by the signal would report
        except (ValueError, KeyError, FileNotFoundError, NotImplementedError) as exc:
            if verbose:
                raise
            print(f"error: {exc}", file=sys.stderr)
            return 2
    parser = build_parser()
    args = parser.parse_args(argv if not verbose else ["-v", *argv])
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError, NotImplementedError) as exc:
        if args.verbose:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["build_parser", "main"]
