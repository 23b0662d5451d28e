"""``python -m training`` / ``shopper-train``: train both variants into a new immutable build.

Prints ``MODEL_URI=file:///.../best_model_<variant>.joblib`` (or ``s3://...``) for each artifact
at the end. ``python -m training builds --registry <dir or s3://bucket/prefix>`` lists the builds
of a registry with their variants, estimators, test metrics and the MODEL_URI of each artifact.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import cast

logger = logging.getLogger(__name__)

DEFAULT_N_ITER = 20
DEFAULT_SEED = 42


def _parser(variants: Sequence[str], families: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the purchase-intent models and write a new build into a registry.",
    )
    parser.add_argument(
        "--data",
        required=True,
        help="CSV, Parquet or SQLite file: a path, file:// or http(s):// URL, or "
        "sqlite:///relative.db?table=NAME / sqlite:////absolute.db?table=NAME",
    )
    parser.add_argument(
        "--out", required=True, help="registry: a directory or an s3://bucket/prefix URI"
    )
    parser.add_argument(
        "--n-iter",
        type=_positive_int,
        default=DEFAULT_N_ITER,
        help=f"sampled candidates per estimator family (default {DEFAULT_N_ITER})",
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="split/search seed")
    parser.add_argument(
        "--variants",
        default=",".join(variants),
        help=f"comma-separated subset of {','.join(variants)} (default: all)",
    )
    parser.add_argument(
        "--families",
        default=",".join(families),
        help=f"comma-separated estimator families to search (default: {','.join(families)})",
    )
    parser.add_argument("--table", default=None, help="table name when --data is SQLite")
    parser.add_argument(
        "--n-jobs", type=_positive_int, default=2, help="parallel workers (default 2, max 2)"
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from exc
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _choices(
    parser: argparse.ArgumentParser, option: str, text: str, allowed: Sequence[str]
) -> tuple[str, ...]:
    """Parse a comma-separated subset of ``allowed`` (order kept, duplicates dropped)."""
    names = tuple(dict.fromkeys(name.strip() for name in text.split(",") if name.strip()))
    unknown = [name for name in names if name not in allowed]
    if unknown or not names:
        parser.error(f"{option}: {unknown or 'nothing'} given; choose from {list(allowed)}")
    return names


def list_registry(argv: Sequence[str]) -> int:
    """``builds --registry R``: print the registry's builds and the MODEL_URI of each artifact."""
    from contract.storage import S3Options, StorageError, Store
    from training.registry import format_builds, list_builds

    parser = argparse.ArgumentParser(
        prog="python -m training builds", description="List the builds of a registry."
    )
    parser.add_argument(
        "--registry", required=True, help="a registry directory or an s3://bucket/prefix URI"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level="WARNING", stream=sys.stderr)
    try:
        builds, ignored = list_builds(args.registry, Store(S3Options.from_environ()))
    except StorageError as exc:
        print(f"cannot list {args.registry}: {exc}", file=sys.stderr)
        return 1
    print(format_builds(builds, ignored))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["builds"]:
        return list_registry(arguments[1:])
    # Heavy imports (scikit-learn, xgboost, matplotlib) only once the CLI actually runs.
    from contract.errors import ContractError
    from contract.pipeline import VARIANTS, Variant
    from training.artifact import BuildExistsError
    from training.data import DataError
    from training.job import TrainConfig, run_training
    from training.search import FAMILIES

    parser = _parser(VARIANTS, FAMILIES)
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    requested = _choices(parser, "--variants", args.variants, VARIANTS)
    families = _choices(parser, "--families", args.families, FAMILIES)
    config = TrainConfig(
        data=args.data,
        out=args.out,
        variants=tuple(cast(Variant, name) for name in requested),
        n_iter=args.n_iter,
        seed=args.seed,
        table=args.table,
        n_jobs=min(args.n_jobs, 2),
        families=families,
    )
    try:
        result = run_training(config)
    except (DataError, BuildExistsError, ContractError) as exc:
        logger.error("training failed: %s", exc)
        return 1
    for uri in result.model_uris.values():
        print(f"MODEL_URI={uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
