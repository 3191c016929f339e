"""`model`: the trained sentiment model (issue 15).

- `musicnft model train`: what the Dagster assets do, from the shell: training set (labelled
  tweets + the lake's posts) → fit and evaluate (held-out, k-fold CV, beside VADER) → artifact
  `models/sentiment/<version>/model.tar.gz` → `beats_vader` → evaluation of the exported artifact
  → promotion. Exit 0 when promoted (or `--no-promote`), 1 when the model does not beat VADER.
- `musicnft model serve`: the SageMaker serving contract (`/ping`, `/invocations`) on a port.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path

from musicnft import wiring
from musicnft.app.cli.common import Subparsers, data_dir_option, settings_from, stop_on_signals

log = logging.getLogger("musicnft.cli")

DEFAULT_MODEL_DIR = "/opt/ml/model"  # where SageMaker unpacks model.tar.gz


def cmd_train(args: argparse.Namespace) -> int:
    from musicnft.model.pipeline import (
        check_candidate,
        evaluate_artifact,
        promote_candidate,
        results_table,
        train_candidate,
    )
    from musicnft.model.train import TrainConfig
    from musicnft.model.training_set import build_training_set

    settings = settings_from(args)
    lake = wiring.open_lake(settings)
    training = build_training_set(lake)
    config = TrainConfig(seed=args.seed, max_unlabelled=args.max_unlabelled)
    candidate = train_candidate(lake, training, config, cv=not args.no_cv)
    ok, why = check_candidate(candidate)
    evaluation = evaluate_artifact(lake, training, candidate)
    print(f"model {candidate.version}: {candidate.key}", file=sys.stderr)
    print(results_table(evaluation), file=sys.stderr)
    if args.json:
        print(json.dumps({"version": candidate.version, "key": candidate.key, **evaluation}))
    if not ok:
        print(f"beats_vader failed, not promoted: {why}", file=sys.stderr)
        return 1
    if args.no_promote:
        print(f"beats_vader passed ({why}); not promoted (--no-promote)", file=sys.stderr)
        return 0
    promote_candidate(lake, candidate)
    print(f"promoted {candidate.version} ({why})", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from musicnft.hotpath.model_artifact import load_model_dir, load_promoted
    from musicnft.hotpath.sentiment_model import SentimentModel
    from musicnft.model.serve import ModelServer

    settings = settings_from(args)
    port = args.port if args.port is not None else (settings.sagemaker_bind_port or 8080)
    model_dir = Path(args.model_dir or DEFAULT_MODEL_DIR)
    if args.model_dir or model_dir.is_dir():

        def loader() -> SentimentModel:
            return load_model_dir(model_dir)
    else:
        lake = wiring.open_lake(settings)

        def loader() -> SentimentModel:
            model = load_promoted(lake)
            if model is None:
                raise FileNotFoundError("no promoted model in the lake: run `musicnft model train`")
            return model

    server = ModelServer(loader, args.host, port)
    print(f"musicnft model serve: http://{args.host}:{server.port}", file=sys.stderr, flush=True)
    stop = stop_on_signals()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop.wait()
    server.close()
    return 0


def register(sub: Subparsers) -> None:
    p = sub.add_parser("model", help="train, evaluate, promote and serve the sentiment model")
    msub = p.add_subparsers(dest="model_command", required=True, metavar="SUBCOMMAND")
    t = msub.add_parser(
        "train",
        parents=[data_dir_option()],
        help="train on the labelled tweets and the lake's posts, evaluate beside VADER, promote",
    )
    t.add_argument("--seed", type=int, default=15, help="split, folds and sampling (default 15)")
    t.add_argument(
        "--max-unlabelled",
        type=int,
        default=20_000,
        metavar="N",
        help="lake posts used to adapt the model (default 20,000)",
    )
    t.add_argument("--no-cv", action="store_true", help="skip the 5-fold cross-validation")
    t.add_argument("--no-promote", action="store_true", help="write the artifact, do not promote")
    t.add_argument("--json", action="store_true", help="print the evaluation as JSON on stdout")
    t.set_defaults(func=cmd_train)
    s = msub.add_parser(
        "serve",
        parents=[data_dir_option()],
        help="serve the model with SageMaker's container contract (/ping, /invocations)",
    )
    s.add_argument(
        "--port",
        type=int,
        default=None,
        help="port (default $SAGEMAKER_BIND_TO_PORT or 8080)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    s.add_argument(
        "--model-dir",
        metavar="DIR",
        help=f"unpacked model.tar.gz (default {DEFAULT_MODEL_DIR} if present, else the lake's "
        "promoted model)",
    )
    s.set_defaults(func=cmd_serve)
