"""The ``hf-recsys`` command line: plugins, models list|describe, data inspect|split, fit, train, evaluate,
recommend, similar, push.

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


def cmd_models_describe(args: argparse.Namespace) -> int:
    import textwrap

    from .configuration_utils import config_options
    from .registry import get_model_spec

    spec = get_model_spec(args.model_type)
    model_class, config_class = spec.model_class, spec.config_class
    print(f"{args.model_type}: {model_class.__module__}.{model_class.__name__} (config {config_class.__name__})")
    summary = (model_class.__doc__ or "").strip().split("\n\n")[0]
    if summary:
        print(textwrap.fill(" ".join(summary.split()), 116, initial_indent="  ", subsequent_indent="  "))
    how = "hf-recsys train (gradient descent)" if model_class.trainable else "hf-recsys fit (solver / counting)"
    print(f"  trained with: {how}; histories for new users: {'yes' if model_class.supports_history else 'no'}\n")
    print("options (`--set name=value` for fit, `--model_config name=value` for train):")
    for opt in config_options(config_class).values():
        if opt.defined_in == "RecConfig":
            continue  # sizes and recorded facts, filled by fit
        print(f"  {opt.name}: {opt.type or '?'} = {opt.default!r}")
        if opt.doc:
            print(textwrap.fill(opt.doc, 116, initial_indent="      ", subsequent_indent="      "))
    return 0


def cmd_data_inspect(args: argparse.Namespace) -> int:
    import numpy as np

    from .data.arrays import unique

    ds = _load(args.path, args)
    users, items = unique(ds["user_id"]), unique(ds["item_id"])
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


_FIT_SHOWN = ("epochs", "batch_size", "learning_rate", "optimizer")


def cmd_fit(args: argparse.Namespace) -> int:
    from .auto import AutoModelForRecommendation

    model = AutoModelForRecommendation.for_model(args.model_type, **_config_kwargs(args))
    from .hub import record_dataset

    train = _load(args.train, args)
    fit_kwargs = {k: _parse_value(v) for k, v in _parse_mapping(args.fit_args, "--fit-args").items()}
    if model.trainable:
        import inspect

        from .training.engine import TrainingOptions, fit_model

        allowed = set(inspect.signature(fit_model).parameters) - {"model", "interactions", "examples_kwargs"}
        allowed |= set(inspect.signature(model.training_examples).parameters) - {"interactions", "kwargs"}
        unknown = sorted(set(fit_kwargs) - allowed)
        if unknown:
            raise ValueError(
                f"--fit-args: {type(model).__name__}.fit takes no {', '.join(unknown)} "
                f"(it takes {', '.join(sorted(allowed))})."
            )
        options = TrainingOptions.from_config(model.config, **{k: fit_kwargs.get(k) for k in TrainingOptions.names()})
        shown = {n: getattr(options, n) for n in _FIT_SHOWN if hasattr(options, n)}
        print(
            f"{args.model_type} is trained by gradient descent: fit() runs the training engine with "
            f"{', '.join(f'{k}={v}' for k, v in shown.items())} (the config's training options: change them with "
            "--set epochs=5 ... or --fit-args epochs=5 ...); `hf-recsys train` adds validation, early stopping, "
            "checkpoints and several processes.",
            file=sys.stderr,
        )
    model.fit(train, **fit_kwargs)
    record_dataset(model, train, name=args.dataset_name or os.path.basename(args.train), source=args.train)
    model.save_pretrained(args.output)
    print(
        f"fitted {args.model_type} on {len(train):,} interactions "
        f"({model.config.num_users:,} users, {model.config.num_items:,} items) -> {args.output}"
    )
    return 0


def _load_model(path: str, revision: str | None = None):
    from .auto import check_model_path
    from .hub import load_model

    check_model_path(path)
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


def _typed_ids(values: Sequence[str], vocab, what: str) -> list:
    """Command-line ids arrive as text: integers when the model's ids are."""
    if vocab.dtype != "int64":
        return list(values)
    try:
        return [int(v) for v in values]
    except ValueError as exc:
        raise SystemExit(f"error: this model's {what} ids are integers: {exc}") from None


def _read_user_list(args: argparse.Namespace, model) -> list:
    if args.users is not None and not args.users:
        raise SystemExit("error: --users needs at least one user id (leave it out to recommend for every user).")
    if args.history is not None:  # one user unseen in training: --users names them (default "new-user")
        if args.users_file or (args.users and len(args.users) > 1):
            raise SystemExit("error: --history describes one user: give at most one --users id with it.")
        return [args.users[0] if args.users else "new-user"]
    if args.users:
        users: list = list(args.users)
    elif args.users_file:
        with open(args.users_file, encoding="utf-8") as f:
            users = [line.strip() for line in f if line.strip()]
    else:
        return model.user_vocab.ids.tolist()
    return _typed_ids(users, model.user_vocab, "user")


def _read_catalogue(path: str | None):
    if not path:
        return None
    from .data import load_items

    return load_items(path)


def _history_items(args: argparse.Namespace, model, catalogue) -> list:
    """``--history`` values as item ids: ids the model knows, or titles found in ``--catalogue``."""
    from .data import resolve_item

    if not args.history:
        raise SystemExit("error: --history needs at least one item id (or title, with --catalogue).")
    out = []
    for value in args.history:
        item: Any = value
        if model.item_vocab.dtype == "int64":
            item = int(value) if value.lstrip("-").isdigit() else None
        if item is None or (model.item_vocab.dtype != "int64" and catalogue is not None and _unknown(model, item)):
            if catalogue is None:
                raise SystemExit(
                    f"error: {value!r} is not an item id of this model; give ids, or titles with "
                    "--catalogue movies.csv."
                )
            item = resolve_item(catalogue, value)  # a value that reads as an id is an id; the others are titles
        out.append(item)
    return out


def _unknown(model, item: Any) -> bool:
    return bool(model.item_vocab.encode([item], unknown="mask")[0] < 0)


_CLI_HISTORY_HINT = "Give a new user's items with --history ITEM [ITEM ...] (ids, or titles with --catalogue)."


def _recommendation_table(users: list, ids, scores, catalogue_lookup: dict | None):
    """Rows ``user_id, item_id, rank, score`` (+ catalogue title); ``-inf`` filler rows are dropped."""
    import numpy as np
    import pyarrow as pa

    keep = np.isfinite(scores)
    counts = keep.sum(axis=1)
    ranks = np.tile(np.arange(1, ids.shape[1] + 1, dtype=np.int32), len(users)).reshape(ids.shape)
    columns = {
        "user_id": pa.array(np.repeat(np.asarray(users, dtype=object), counts).tolist()),
        "item_id": pa.array(ids[keep].tolist()),
        "rank": pa.array(ranks[keep]),
        "score": pa.array(scores[keep]),
    }
    if catalogue_lookup is not None:
        columns["title"] = pa.array([catalogue_lookup.get(i, {}).get("title") for i in ids[keep].tolist()])
    return pa.table(columns), int((counts < ids.shape[1]).sum())


def _write_table(table, output: str | None, what: str) -> None:
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    if output is None:
        print(table.to_pandas().to_string(index=False))
    elif output.endswith(".csv"):
        pacsv.write_csv(table, output)
    else:
        pq.write_table(table, output)
    if output:
        print(f"{table.num_rows:,} {what} -> {output}")


def cmd_recommend(args: argparse.Namespace) -> int:
    import pyarrow as pa
    from tqdm.auto import tqdm

    from .data import UnknownIdError
    from .pipelines import catalogue_lookup

    if args.ray_log:
        return _recommend_on_ray(args)
    model = _load_model(args.model, args.revision)
    catalogue = _read_catalogue(args.catalogue)
    users = _read_user_list(args, model)
    histories = None if args.history is None else {users[0]: _history_items(args, model, catalogue)}
    chunks, short, ignored = [], 0, 0
    step = args.batch_size
    lookup = catalogue_lookup(catalogue) if catalogue is not None else None
    for start in tqdm(range(0, len(users), step), desc="recommend", unit="batch", disable=len(users) <= step):
        batch = users[start : start + step]
        try:
            recs = model.recommend(
                batch,
                k=args.k,
                exclude_seen=not args.include_seen,
                batch_size=step,
                histories=histories,
                ignore_unknown_items=args.ignore_unknown_items,
            )
        except UnknownIdError as exc:
            if exc.kind == "user" and model.supports_history:
                raise UnknownIdError("user", exc.ids, _CLI_HISTORY_HINT) from None
            if exc.kind == "item":
                raise UnknownIdError("item", exc.ids, "Add --ignore-unknown-items to drop them.") from None
            raise
        table, n_short = _recommendation_table(batch, recs.item_ids, recs.scores, lookup)
        chunks.append(table)
        short, ignored = short + n_short, ignored + recs.num_ignored_items
    if ignored:
        print(f"ignored {ignored} history item(s) the model does not know", file=sys.stderr)
    if short:
        print(f"{short:,} user(s) got fewer than k={args.k} items (not enough eligible items)", file=sys.stderr)
    _write_table(pa.concat_tables(chunks), args.output, f"recommendations for {len(users):,} users")
    return 0


def _recommend_on_ray(args: argparse.Namespace) -> int:
    """``recommend --ray-log``: every user of a Parquet log, scored by Ray actors (``hf_recsys.integrations.ray``)."""
    from .integrations.ray import recommend_all

    given = [f for f, v in (("--users", args.users), ("--users-file", args.users_file), ("--history", args.history),
                            ("--catalogue", args.catalogue)) if v is not None]  # fmt: skip
    if given:
        raise ValueError(f"--ray-log scores every user of the log: drop {', '.join(given)}.")
    if not args.output or os.path.splitext(args.output)[1]:
        raise ValueError("--ray-log writes a Parquet folder: give --output a folder name (no file extension).")
    recommend_all(
        args.model, args.ray_log, args.output, k=args.k, exclude_seen=not args.include_seen,
        num_replicas=args.ray_replicas, batch_size=args.batch_size, revision=args.revision,
    )  # fmt: skip
    print(f"recommendations for every user of {args.ray_log} -> {args.output}/ (Parquet, written by Ray)")
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    import numpy as np

    from .pipelines import catalogue_lookup

    model = _load_model(args.model, args.revision)
    catalogue = _read_catalogue(args.catalogue)
    args.history = args.items  # ids or titles, resolved the same way
    items = _history_items(args, model, catalogue)
    ids, scores = model.similar_items(items, k=args.k)
    lookup = catalogue_lookup(catalogue) if catalogue is not None else None
    table, _ = _recommendation_table(items, ids, scores, lookup)
    table = table.rename_columns(["query_item_id", "item_id", "rank", "score", *table.column_names[4:]])
    if not np.isfinite(scores).all():
        print("some items have fewer than k similar items", file=sys.stderr)
    _write_table(table, args.output, f"similar items for {len(items):,} items")
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

    models = sub.add_parser("models", help="list models or describe one model's options").add_subparsers(
        dest="models_command", required=True
    )
    p = models.add_parser("list", help="registered models and the distributions that provide them")
    p.set_defaults(func=cmd_plugins)
    p = models.add_parser("describe", help="a model's options with types, defaults and docs")
    p.add_argument("model_type", help="registry key, see `hf-recsys models list`")
    p.set_defaults(func=cmd_models_describe)

    data = sub.add_parser("data", help="inspect or split an interaction log").add_subparsers(
        dest="data_command", required=True
    )
    p = data.add_parser("inspect", help="sizes, density, rating and time ranges of a log")
    p.add_argument("path")
    _add_data_args(p)
    p.set_defaults(func=cmd_data_inspect)
    p = data.add_parser("split", help="split a log into train/validation/test Parquet files")
    p.add_argument("path")
    p.add_argument("--method", choices=SPLITS, default="leave_last_out", help="how to split (default: leave_last_out)")
    p.add_argument("--output", required=True, help="folder for train/validation/test.parquet")
    p.add_argument("--n-test", type=int, default=1, help="leave_last_out: test interactions per user")
    p.add_argument("--n-validation", type=int, default=0, help="leave_last_out: validation interactions per user")
    p.add_argument("--test-ratio", type=float, default=0.2, help="ratio splits: share of test interactions")
    p.add_argument("--validation-ratio", type=float, default=0.0, help="ratio splits: share of validation")
    p.add_argument("--kcore", type=int, default=0, help="k-core filter users and items before splitting")
    p.add_argument("--seed", type=int, default=0, help="random split: the seed")
    _add_data_args(p)
    p.set_defaults(func=cmd_data_split)

    p = sub.add_parser("train", help="train a model under Accelerate (see `hf-recsys train --help`)", add_help=False)
    p.set_defaults(func=lambda args: cmd_train([]))

    p = sub.add_parser("fit", help="fit a model that needs no gradient training (MostPopular, EASE, ItemKNN, ALS...)")
    p.add_argument("--model-type", required=True, help="registry key, see `hf-recsys plugins`")
    p.add_argument("--train", required=True, help="training log (CSV/TSV/Parquet/JSONL/datasets folder)")
    p.add_argument("--output", required=True, help="folder to save_pretrained into")
    p.add_argument("--config", help="JSON file of config options")
    p.add_argument(
        "--set", nargs="*", help="config options key=value (values parsed as JSON; `hf-recsys models describe`)"
    )
    p.add_argument("--fit-args", nargs="*", help="options of fit() key=value, e.g. epochs=5 (gradient-trained models)")
    p.add_argument("--dataset-name", help="name of the training data for the model card (default: file name)")
    _add_data_args(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("evaluate", help="full-ranking evaluation of a saved model")
    p.add_argument("--model", required=True, help="saved model folder or Hub repo id")
    p.add_argument("--train", required=True, help="the training log (its items are masked)")
    p.add_argument("--test", required=True, help="the test log")
    p.add_argument("--k", type=int, nargs="+", default=[10], help="cut-offs of the metrics (default: 10)")
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
    p.add_argument("--history", nargs="*", help="items of a user unseen in training (ids, or titles with --catalogue)")
    p.add_argument("--ignore-unknown-items", action="store_true", help="drop --history items the model never saw")
    p.add_argument("--catalogue", help="item file (e.g. movies.csv): titles in --history and in the output")
    p.add_argument("--k", type=int, default=10, help="items per user (default: 10)")
    p.add_argument("--include-seen", action="store_true", help="do not exclude items seen in training")
    p.add_argument("--batch-size", type=int, default=1024, help="users scored at once")
    p.add_argument("--ray-log", help="score every user of this Parquet log on Ray (pip install 'hf-recsys[ray]')")
    p.add_argument("--ray-replicas", type=int, default=2, help="with --ray-log: model replicas (Ray actors)")
    p.add_argument("--output", help=".parquet or .csv (default: print)")
    p.set_defaults(func=cmd_recommend)

    p = sub.add_parser("similar", help="the items most similar to given items (query_item_id, item_id, rank, score)")
    p.add_argument("--model", required=True, help="saved model folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--items", nargs="+", required=True, help="item ids (or titles, with --catalogue)")
    p.add_argument("--catalogue", help="item file (e.g. movies.csv): titles in --items and in the output")
    p.add_argument("--k", type=int, default=10, help="similar items per item (default: 10)")
    p.add_argument("--output", help=".parquet or .csv (default: print)")
    p.set_defaults(func=cmd_similar)

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
    from .evaluation.streaming import add_stream_eval_parser

    add_stream_eval_parser(sub)  # hf-recsys stream-eval (hf_recsys/evaluation/streaming.py)
    from .policies.cli import add_ope_parser

    add_ope_parser(sub)  # hf-recsys ope LOG --model MODEL --policy NAME (hf_recsys/policies)
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
        HfArgumentParser(ARGUMENT_CLASSES, prog="hf-recsys train").print_help()
        return 0
    config = argv.pop(0) if argv and not argv[0].startswith("-") else None
    from .training.run import run_train

    run_train(*parse_train_args(argv, config_file=config))
    return 0


def _train_logging(verbose: bool) -> None:
    """Log once: the main process logs the training's INFO lines, the others only errors (under torchrun or
    ``accelerate launch`` every process runs this command)."""
    main_process = os.environ.get("RANK", "0") == "0"
    level = (logging.INFO if verbose else logging.WARNING) if main_process else logging.ERROR
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("hf_recsys.training").setLevel(logging.INFO if main_process else logging.ERROR)
    if not main_process:
        logging.getLogger("hf_recsys").setLevel(logging.ERROR)
        for name in ("transformers", "datasets", "accelerate"):
            logging.getLogger(name).setLevel(logging.ERROR)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = False
    while argv and argv[0] in ("-v", "--verbose"):
        verbose, argv = True, argv[1:]
    if argv and argv[0] == "train":
        _train_logging(verbose)
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
