"""Serving a recommender over HTTP: ``hf-recsys serve MODEL`` (``pip install "hf-recsys[serve]"``)."""

from __future__ import annotations

import argparse
import json
import os


def add_serve_parser(sub) -> None:
    """The ``serve`` subcommand of ``hf-recsys``."""
    p = sub.add_parser("serve", help='HTTP JSON server for a saved model (pip install "hf-recsys[serve]")')
    p.add_argument("model", help="saved model folder or Hub repo id")
    p.add_argument("--revision", help="Hub revision (branch, tag or commit)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token", help="bearer token for every endpoint but /health (default: $HF_RECSYS_SERVE_TOKEN)")
    p.add_argument("--feedback-log", help="JSON Lines file that POST /feedback appends to")
    p.add_argument(
        "--online-updates",
        action="store_true",
        help="pass logged /feedback events to model.partial_fit in the background (needs --feedback-log)",
    )
    p.add_argument(
        "--update-options", type=_json_object, default=None, help="partial_fit options, e.g. '{\"epochs\": 1}'"
    )
    p.add_argument("--access-log", action="store_true", help="log every request (off: a per-request cost)")
    p.add_argument(
        "--no-fast-path",
        dest="fast_path",
        action="store_false",
        help="route /recommend and /similar through FastAPI too (for comparison; the answers are the same)",
    )
    p.add_argument("--max-batch", type=int, default=256, help="most requests answered by one model call")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="how long a request waits for others to batch")
    p.set_defaults(func=cmd_serve)


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"a JSON object is needed, got {text!r}")
    return value


def cmd_serve(args: argparse.Namespace) -> int:
    from .app import serve

    serve(
        args.model,
        host=args.host,
        port=args.port,
        revision=args.revision,
        token=args.token or os.environ.get("HF_RECSYS_SERVE_TOKEN"),
        feedback_log=args.feedback_log,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        online_updates=args.online_updates,
        access_log=args.access_log,
        fast_path=args.fast_path,
        update_options=args.update_options,
    )
    return 0


def create_app(*args, **kwargs):
    """See :func:`hf_recsys.serving.app.create_app` (imported lazily: FastAPI is optional)."""
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["add_serve_parser", "cmd_serve", "create_app"]
