"""``python -m training`` / ``shopper-train``: train both variants into a new immutable build.

Prints ``MODEL_URI=file:///.../best_model_<variant>.joblib`` (or ``s3://...``) for each artifact
at the end.

Subcommands (``train`` is the default, so ``python -m training --data ... --out ...`` works):

    python -m training [train] --data FILE_OR_URI --out REGISTRY_DIR_OR_S3 [--signing-key FILE]
    python -m training keygen --private-key FILE --public-key FILE
    python -m training sign --build DIR_OR_URI [--signing-key FILE]
    python -m training drift --build DIR --data NEW_DATA   (a drift report: training.drift)
    python -m training builds --registry DIR_OR_S3   (the builds, their metrics and MODEL_URIs)
    python -m training compare --champion URI --challenger URI --data LABELLED   (exit 0: the
        challenger is not worse by --rule; 1: worse; 2: undecided. training.compare)
    python -m training collect --out DIR_OR_S3 --since 7d   (labelled sessions from the
        input and outcome topics: training.collect)
    python -m training cycle --registry DIR_OR_S3 [--champion URI]   (collect -> train ->
        compare with the build in service -> the verdict: training.cycle, the CronJob's command)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import cast

from training.arguments import positive_int
from training.keys import SIGNING_KEY_ENV, BuildNotFoundError, keygen, sign

logger = logging.getLogger(__name__)

DEFAULT_N_ITER = 20
DEFAULT_SEED = 42


COMMANDS = ("train", "keygen", "sign")
DEFAULT_COMMAND = "train"


def _parser(variants: Sequence[str], families: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training",
        description="Train the purchase-intent models and write a new build into a registry "
        "(the default command), or manage the keys that sign builds.",
    )
    commands = parser.add_subparsers(dest="command", metavar="{" + ",".join(COMMANDS) + "}")
    _add_train(commands.add_parser("train", help="train a new build (default)"), variants, families)
    _add_keygen(commands.add_parser("keygen", help="make an Ed25519 signing key pair"))
    _add_sign(commands.add_parser("sign", help="sign (or re-sign) an existing build"))
    return parser


def _log_level_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])


def _signing_key_option(parser: argparse.ArgumentParser, required_hint: str) -> None:
    parser.add_argument(
        "--signing-key",
        type=Path,
        default=os.environ.get(SIGNING_KEY_ENV) or None,
        help=f"Ed25519 private key (PKCS#8 PEM) {required_hint}; default ${SIGNING_KEY_ENV}",
    )


def _add_keygen(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--private-key", required=True, type=Path, help="new private key file (mode 0600)"
    )
    parser.add_argument(
        "--public-key", required=True, type=Path, help="new public key file, for MODEL_TRUSTED_KEYS"
    )
    _log_level_option(parser)


def _add_sign(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--build", required=True, help="build directory, or a path or file:// URI of an artifact"
    )
    _signing_key_option(parser, "to sign with")
    _log_level_option(parser)


def _add_train(
    parser: argparse.ArgumentParser, variants: Sequence[str], families: Sequence[str]
) -> None:
    parser.add_argument(
        "--data",
        required=True,
        help="CSV, Parquet or SQLite file: a path, file:// or http(s):// URL, or "
        "sqlite:///relative.db?table=NAME / sqlite:////absolute.db?table=NAME; or the "
        "directory or s3:// prefix python -m training collect wrote",
    )
    parser.add_argument(
        "--out", required=True, help="registry: a directory or an s3://bucket/prefix URI"
    )
    parser.add_argument(
        "--n-iter",
        type=positive_int,
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
    parser.add_argument(
        "--threshold-rule",
        default="f1",
        help="how the decision threshold is chosen on out-of-fold predictions: f1 (default), "
        "precision=<p> (the most recall with precision >= p) or cost=<fp>:<fn> (the lowest "
        "cost of false positives and false negatives)",
    )
    parser.add_argument("--table", default=None, help="table name when --data is SQLite")
    parser.add_argument(
        "--n-jobs",
        type=positive_int,
        default=None,
        help="parallel workers (default and maximum: the CPUs this process may use, by its "
        "affinity and cgroup quota)",
    )
    _log_level_option(parser)
    _signing_key_option(parser, "to sign the build's manifest.json with (unsigned if unset)")


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
    if arguments[:1] == ["collect"]:
        from training.collect import main as collect_main

        return collect_main(arguments[1:])
    if arguments[:1] == ["drift"]:
        from training.drift import main as drift_main

        return drift_main(arguments[1:])
    if arguments[:1] == ["compare"]:
        from training.compare import main as compare_main

        return compare_main(arguments[1:])
    if arguments[:1] == ["cycle"]:
        from training.cycle import main as cycle_main

        return cycle_main(arguments[1:])
    if not arguments or arguments[0] not in (*COMMANDS, "-h", "--help"):
        arguments.insert(0, DEFAULT_COMMAND)
    variants: Sequence[str] = ()
    families: Sequence[str] = ()
    if arguments[0] not in ("keygen", "sign"):
        # Heavy imports (scikit-learn, xgboost) only for the commands that train.
        from contract.pipeline import VARIANTS
        from training.search import FAMILIES

        variants, families = VARIANTS, FAMILIES
    parser = _parser(variants, families)
    args = parser.parse_args(arguments)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.command == "keygen":
        return _keygen(args)
    if args.command == "sign":
        return _sign(parser, args)
    return _train(parser, args)


def _keygen(args: argparse.Namespace) -> int:
    from contract.signing import SigningKeyError

    try:
        key_id = keygen(args.private_key, args.public_key)
    except SigningKeyError as exc:
        logger.error("keygen failed: %s", exc)
        return 1
    print(f"private_key={args.private_key}")
    print(f"public_key={args.public_key}")
    print(f"fingerprint={key_id}")
    return 0


def _sign(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from contract.signing import SigningKeyError

    if args.signing_key is None:
        parser.error(f"sign needs --signing-key or ${SIGNING_KEY_ENV}")
    try:
        signature, key_id = sign(args.build, args.signing_key)
    except (SigningKeyError, BuildNotFoundError, PermissionError) as exc:
        logger.error("signing failed: %s", exc)
        return 1
    print(f"signature={signature}")
    print(f"fingerprint={key_id}")
    return 0


def _train(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from contract.errors import ContractError
    from contract.pipeline import VARIANTS, Variant
    from contract.signing import load_signing_key
    from training.artifact import BuildExistsError
    from training.cpus import usable_cpus
    from training.data import DataError
    from training.evaluate import ThresholdRule
    from training.job import TrainConfig, run_training
    from training.search import FAMILIES

    cpus = usable_cpus()
    requested = _choices(parser, "--variants", args.variants, VARIANTS)
    families = _choices(parser, "--families", args.families, FAMILIES)
    try:
        rule = ThresholdRule.parse(args.threshold_rule)
    except ValueError as exc:
        parser.error(f"--threshold-rule: {exc}")
    config = TrainConfig(
        data=args.data,
        out=args.out,
        variants=tuple(cast(Variant, name) for name in requested),
        n_iter=args.n_iter,
        seed=args.seed,
        table=args.table,
        n_jobs=min(args.n_jobs or cpus, cpus),
        families=families,
        threshold_rule=rule,
    )
    try:
        # The key is read before training, so a bad key fails in seconds, not after the search.
        if args.signing_key is not None:
            config = replace(config, signing_key=load_signing_key(args.signing_key))
        result = run_training(config)
    except (DataError, BuildExistsError, ContractError) as exc:
        logger.error("training failed: %s", exc)
        return 1
    for uri in result.model_uris.values():
        print(f"MODEL_URI={uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
