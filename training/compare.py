"""``python -m training compare``: is the challenger build worse than the champion on the same
fresh outcomes?

Both builds go through the consumer's gates (``contract.builds``: fetch, signature, manifest,
sha256, libraries, columns, load, golden rows) before either scores a row; then both score the
same labelled rows (``--data``, read by ``training.data.load_sessions``), every figure is
``contract.metrics.metrics_at``'s (each build at its own threshold), and a paired bootstrap
(``training.bootstrap``) gives a percentile interval of each difference ``challenger -
champion``.

The rule, per ``--rule METRIC[:MARGIN]`` (all of them must hold): with ``[L, U]`` the interval
of ``challenger - champion`` at ``--confidence``,

- a figure where lower is better (``brier``, ``log_loss``, ``ece``) is *not worse* when
  ``U <= margin``;
- a figure where higher is better (``roc_auc``, ``pr_auc``) is *not worse* when ``L >= -margin``.

So "not worse" must be shown by the data: with margin 0 the challenger passes only if the
interval excludes any loss at all (a build against itself passes: every difference is exactly 0).
Exit status 0 when every rule holds, 1 when one does not, 2 when nothing could be decided (bad
arguments or settings, unreadable data or build, a gate refusal, a figure undefined on the data).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from contract.builds import (
    BuildGateError,
    CheckedBuild,
    check_build,
    check_golden_rows,
    fetch_artifact,
)
from contract.errors import ContractError
from contract.frame import events_to_frame
from contract.metrics import ECE_BINS, metrics_at
from contract.parsing import parse_bool
from contract.schema import SessionEvent
from contract.storage import S3Options, StorageError, Store, parse_location
from training.arguments import positive_int
from training.bootstrap import METRICS, Interval, ResampleScorer, interval, paired_differences
from training.data import DataError, load_sessions, split_features_label

logger = logging.getLogger(__name__)

__all__ = [
    "EXIT_NOT_WORSE",
    "EXIT_UNDECIDED",
    "EXIT_WORSE",
    "CompareError",
    "Comparison",
    "Contender",
    "Rule",
    "compare",
    "main",
    "open_build",
    "write_report",
]

EXIT_NOT_WORSE: Final = 0
EXIT_WORSE: Final = 1
EXIT_UNDECIDED: Final = 2
TRUSTED_KEYS_ENV: Final = "MODEL_TRUSTED_KEYS"
REQUIRE_SIGNED_ENV: Final = "REQUIRE_SIGNED_MODEL"
FETCH_ATTEMPTS: Final = 4
"""Tries at downloading an ``s3://`` build, as the consumer's ``MODEL_FETCH_ATTEMPTS``."""
DEFAULT_RESAMPLES: Final = 1000
DEFAULT_CONFIDENCE: Final = 0.95

RuleMetric = Literal["brier", "log_loss", "ece", "roc_auc", "pr_auc"]
RULE_METRICS: Final[tuple[RuleMetric, ...]] = get_args(RuleMetric)
LOWER_IS_BETTER: Final = frozenset({"brier", "log_loss", "ece"})
LABELS: Final[dict[str, str]] = {
    "brier": "Brier",
    "log_loss": "log loss",
    "ece": "ECE",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "precision": "precision at own threshold",
    "recall": "recall at own threshold",
    "f1": "F1 at own threshold",
}
Role = Literal["champion", "challenger"]


class CompareError(Exception):
    """Nothing can be decided; the message says why (exit status 2)."""


@dataclass(frozen=True)
class Rule:
    """``metric`` of the challenger is not worse than the champion's by more than ``margin``."""

    metric: RuleMetric
    margin: float = 0.0

    @classmethod
    def parse(cls, text: str, default_margin: float = 0.0) -> Rule:
        """``METRIC`` or ``METRIC:MARGIN`` (a margin >= 0 in the figure's own units)."""
        name, separator, margin_text = text.strip().partition(":")
        if name not in RULE_METRICS:
            raise ValueError(f"rule {text!r}: the metric is one of {', '.join(RULE_METRICS)}")
        margin = default_margin
        if separator:
            try:
                margin = float(margin_text)
            except ValueError:
                raise ValueError(f"rule {text!r}: {margin_text!r} is not a number") from None
        if not (math.isfinite(margin) and margin >= 0):
            raise ValueError(f"rule {text!r}: the margin must be a finite number >= 0")
        return cls(name, margin)

    @property
    def lower_is_better(self) -> bool:
        return self.metric in LOWER_IS_BETTER

    def bound(self, difference: Interval) -> float:
        """The end of the interval that decides: the upper one when lower is better."""
        return difference.upper if self.lower_is_better else difference.lower

    def holds(self, difference: Interval) -> bool:
        if self.lower_is_better:
            return difference.upper <= self.margin
        return difference.lower >= -self.margin

    def describe(self, confidence: float, difference: Interval | None = None) -> str:
        """The test in words; with ``difference``, the bound found and whether it passed:
        ``brier: upper bound of the 95% interval of challenger - champion +0.00216 > margin
        +0.00000``."""
        side = "upper" if self.lower_is_better else "lower"
        limit = (
            f"margin {self.margin:+.5f}"
            if self.lower_is_better
            else f"-margin {-self.margin + 0.0:+.5f}"
        )
        text = (
            f"{self.metric}: {side} bound of the {confidence:.0%} interval of challenger - champion"
        )
        if difference is None:
            return f"{text} {'<=' if self.lower_is_better else '>='} {limit}"
        holds = self.holds(difference)
        test = ("<=" if holds else ">") if self.lower_is_better else (">=" if holds else "<")
        return f"{text} {_signed(self.bound(difference))} {test} {limit}"


@dataclass(frozen=True)
class Contender:
    """One build that passed its gates, and what it made of the rows."""

    role: Role
    uri: str
    build: CheckedBuild
    probabilities: npt.NDArray[np.float64]
    metrics: dict[str, Any]

    @property
    def threshold(self) -> float:
        return self.build.entry.threshold

    def description(self) -> dict[str, Any]:
        signer = self.build.signer
        return {
            "uri": self.uri,
            "build_id": self.build.manifest.build_id,
            "variant": self.build.entry.variant,
            "estimator": self.build.entry.estimator,
            "threshold": self.threshold,
            "threshold_rule": self.build.entry.threshold_rule,
            "signed_by": None if signer is None else signer.fingerprint,
            "metrics": self.metrics,
        }


@dataclass(frozen=True)
class Comparison:
    champion: Contender
    challenger: Contender
    data: dict[str, Any]
    resamples: int
    seed: int
    confidence: float
    seconds: float
    differences: dict[str, float]
    intervals: dict[str, Interval]
    rules: tuple[Rule, ...]

    @property
    def failed(self) -> list[Rule]:
        return [rule for rule in self.rules if not rule.holds(self.intervals[rule.metric])]

    @property
    def not_worse(self) -> bool:
        return not self.failed

    def verdict(self) -> str:
        """One line: the verdict and the rule that decided it."""
        failed = self.failed
        if failed:
            reasons = "; ".join(
                rule.describe(self.confidence, self.intervals[rule.metric]) for rule in failed
            )
            return f"verdict: WORSE (exit {EXIT_WORSE}): {reasons}"
        reasons = "; ".join(
            rule.describe(self.confidence, self.intervals[rule.metric]) for rule in self.rules
        )
        return f"verdict: NOT WORSE (exit {EXIT_NOT_WORSE}): {reasons}"


def open_build(
    uri: str,
    role: Role,
    store: Store,
    cache_dir: Path,
    trusted_keys: Path | None,
    allow_library_mismatch: bool = False,
) -> CheckedBuild:
    """Fetch (``s3://``) and gate one build as the consumer does, the golden rows re-scored by
    the pipeline itself; BuildGateError names the gate that refused it."""
    artifact = fetch_artifact(uri, cache_dir / role, store, FETCH_ATTEMPTS)
    if trusted_keys is None:
        logger.warning(
            "no trusted keys (--trusted-keys, %s): the %s's signature is not checked, so its "
            "origin is not verified uri=%s",
            TRUSTED_KEYS_ENV,
            role,
            uri,
        )
    build = check_build(
        artifact,
        trusted_keys,
        allow_library_mismatch,
        trusted_keys_setting="--trusted-keys",
        library_override="pass --allow-library-mismatch",
    )
    if build.signer is not None:
        logger.info("%s manifest signature verified key=%s", role, build.signer.fingerprint)
    if build.library_mismatches:
        logger.warning("%s library mismatch allowed: %s", role, list(build.library_mismatches))
    pipeline = build.pipeline

    def score(events: Sequence[SessionEvent]) -> npt.NDArray[np.float64]:
        return np.asarray(pipeline.predict_proba(events_to_frame(events))[:, 1], np.float64)

    check_golden_rows(build.entry, score)
    return build


def _contender(
    role: Role, uri: str, build: CheckedBuild, features: Any, labels: npt.NDArray[np.int64]
) -> Contender:
    probabilities = _score(role, build, features)
    metrics = metrics_at(labels, probabilities, build.entry.threshold)
    return Contender(role, uri, build, probabilities, metrics)


def _score(role: Role, build: CheckedBuild, features: Any) -> npt.NDArray[np.float64]:
    try:
        probabilities = np.asarray(build.pipeline.predict_proba(features)[:, 1], np.float64)
    except Exception as exc:  # whatever the estimator raises, the data cannot be scored
        raise CompareError(f"the {role} cannot score the data: {exc!r}") from exc
    if not np.all(np.isfinite(probabilities)):
        raise CompareError(f"the {role} returned a non-finite probability")
    return probabilities


def compare(
    champion: tuple[str, CheckedBuild],
    challenger: tuple[str, CheckedBuild],
    features: Any,
    labels: npt.ArrayLike,
    rules: Sequence[Rule],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 42,
    confidence: float = DEFAULT_CONFIDENCE,
    data: dict[str, Any] | None = None,
) -> Comparison:
    """Score the rows with both builds and measure them: figures, paired bootstrap, rules."""
    y = np.asarray(labels).astype(np.int64)
    if not len(y):
        raise CompareError("the data has no rows")
    ours = _contender("champion", *champion, features, y)
    theirs = _contender("challenger", *challenger, features, y)
    started = time.perf_counter()
    differences = paired_differences(
        ResampleScorer(y, ours.probabilities, ours.threshold),
        ResampleScorer(y, theirs.probabilities, theirs.threshold),
        len(y),
        resamples,
        seed,
    )
    seconds = time.perf_counter() - started
    logger.info("bootstrap resamples=%d rows=%d seconds=%.2f", resamples, len(y), seconds)
    intervals = {name: interval(differences[name], confidence) for name in METRICS}
    for rule in rules:
        if math.isnan(rule.bound(intervals[rule.metric])):
            raise CompareError(
                f"rule {rule.metric} cannot be decided: the figure is undefined on the data "
                "(an AUC needs purchases and non-purchases)"
            )
    return Comparison(
        champion=ours,
        challenger=theirs,
        data={"rows": len(y), "positives": int(y.sum()), **(data or {})},
        resamples=resamples,
        seed=seed,
        confidence=confidence,
        seconds=seconds,
        differences={name: theirs.metrics[name] - ours.metrics[name] for name in METRICS},
        intervals=intervals,
        rules=tuple(rules),
    )


def _signed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:+.5f}"


def _plain(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def format_table(comparison: Comparison) -> str:
    """The comparison as a Markdown table (printed, and the heart of ``comparison.md``)."""
    ours, theirs = comparison.champion, comparison.challenger
    width = f"{comparison.confidence:.0%}"
    lines = [
        f"| metric | better | champion | challenger | challenger - champion | {width} interval |",
        "|---|---|---|---|---|---|",
        f"| threshold (own) | | {ours.threshold:.4f} | {theirs.threshold:.4f} | | |",
    ]
    for name in METRICS:
        better = "lower" if name in LOWER_IS_BETTER else "higher"
        found = comparison.intervals[name]
        undefined = f" ({found.undefined} resamples undefined)" if found.undefined else ""
        lines.append(
            f"| {LABELS[name]} | {better} | {_plain(ours.metrics[name])} | "
            f"{_plain(theirs.metrics[name])} | {_signed(comparison.differences[name])} | "
            f"[{_signed(found.lower)}, {_signed(found.upper)}]{undefined} |"
        )
    return "\n".join(lines)


def _heading(comparison: Comparison) -> list[str]:
    data = comparison.data
    lines = [
        f"champion:   {_name(comparison.champion)}",
        f"challenger: {_name(comparison.challenger)}",
    ]
    lines.append(
        f"data: {data.get('uri', '(given)')}: {data['rows']} rows, {data['positives']} purchases; "
        f"paired bootstrap: {comparison.resamples} resamples, seed {comparison.seed}, "
        f"{comparison.seconds:.1f} s"
    )
    return lines


def _name(contender: Contender) -> str:
    manifest, entry = contender.build.manifest, contender.build.entry
    signed = (
        ""
        if contender.build.signer is None
        else f", signed by {contender.build.signer.fingerprint}"
    )
    return f"{manifest.build_id} ({entry.variant}, {entry.estimator}{signed}) {contender.uri}"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def as_json(comparison: Comparison) -> dict[str, Any]:
    """``comparison.json``: everything the table and the verdict say, machine-readable."""
    document: dict[str, Any] = _json_safe(
        {
            "champion": comparison.champion.description(),
            "challenger": comparison.challenger.description(),
            "data": comparison.data,
            "bootstrap": {
                "resamples": comparison.resamples,
                "seed": comparison.seed,
                "confidence": comparison.confidence,
                "paired": True,
                "interval": "percentile",
                "seconds": round(comparison.seconds, 3),
            },
            "differences": {
                name: {
                    "estimate": comparison.differences[name],
                    "lower": comparison.intervals[name].lower,
                    "upper": comparison.intervals[name].upper,
                    "undefined_resamples": comparison.intervals[name].undefined,
                    "better": "lower" if name in LOWER_IS_BETTER else "higher",
                }
                for name in METRICS
            },
            "rules": [
                {
                    "metric": rule.metric,
                    "margin": rule.margin,
                    "test": rule.describe(comparison.confidence),
                    "bound": rule.bound(comparison.intervals[rule.metric]),
                    "holds": rule.holds(comparison.intervals[rule.metric]),
                }
                for rule in comparison.rules
            ],
            "verdict": "not_worse" if comparison.not_worse else "worse",
            "exit_status": EXIT_NOT_WORSE if comparison.not_worse else EXIT_WORSE,
        }
    )
    return document


def _plot_reliability(comparison: Comparison, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display; must precede pyplot
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 6))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for contender, marker in ((comparison.champion, "o"), (comparison.challenger, "s")):
        points = contender.metrics["reliability"]
        axes.plot(
            [point["mean_probability"] for point in points],
            [point["positive_rate"] for point in points],
            marker=marker,
            label=f"{contender.role} {contender.build.manifest.build_id} "
            f"({contender.build.entry.variant}): ECE {contender.metrics['ece']:.4f}, "
            f"Brier {contender.metrics['brier']:.4f}",
        )
    axes.set(
        xlim=(0, 1),
        ylim=(0, 1),
        xlabel="mean predicted probability",
        ylabel="share of purchases",
        title=f"Reliability on the same {comparison.data['rows']} rows ({ECE_BINS} quantile bins)",
    )
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), fontsize="small")
    figure.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(figure)


def write_report(comparison: Comparison, folder: Path) -> Path:
    """``comparison.json``, ``comparison.md`` and ``reliability.png`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "comparison.json").write_text(
        json.dumps(as_json(comparison), indent=2, allow_nan=False) + "\n", encoding="utf-8"
    )
    _plot_reliability(comparison, folder / "reliability.png")
    lines = [
        "# Champion vs challenger",
        "",
        *(f"- {line}" for line in _heading(comparison)),
        "",
        format_table(comparison),
        "",
        *(
            f"- rule {rule.describe(comparison.confidence, comparison.intervals[rule.metric])}: "
            f"{'holds' if rule.holds(comparison.intervals[rule.metric]) else 'fails'}"
            for rule in comparison.rules
        ),
        "",
        f"**{comparison.verdict()}**",
        "",
        "![reliability of both builds](reliability.png)",
    ]
    (folder / "comparison.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m training compare",
        description="Score a champion and a challenger build on the same labelled rows, measure "
        "both (Brier, log loss, ECE, ROC-AUC, PR-AUC; precision, recall and F1 at each build's "
        "own threshold) with paired-bootstrap intervals of challenger - champion, and decide "
        "whether the challenger is worse. With [L, U] that interval: a rule on brier, log_loss "
        "or ece (lower is better) holds when U <= margin; on roc_auc or pr_auc (higher is "
        "better) when L >= -margin. Exit status 0: every rule holds (not worse); 1: one does "
        "not (worse); 2: nothing could be decided (arguments, data, a build refused by a gate).",
    )
    parser.add_argument(
        "--champion", required=True, help="the build in service: MODEL_URI form (a path, "
        "file:// or s3:// URI of a best_model_<variant>.joblib, its manifest.json beside it)",
    )  # fmt: skip
    parser.add_argument("--challenger", required=True, help="the candidate build, same form")
    parser.add_argument(
        "--data",
        required=True,
        help="labelled rows (the dataset's 18 columns, Revenue the outcome), in any form "
        "training reads: CSV, Parquet or SQLite by path, file://, http(s):// or s3:// URI",
    )
    parser.add_argument("--table", default=None, help="table name when --data is SQLite")
    parser.add_argument(
        "--rule",
        action="append",
        default=None,
        metavar="METRIC[:MARGIN]",
        help=f"one of {', '.join(RULE_METRICS)}, with an optional margin in the figure's units "
        "(repeat for several: all must hold; default: brier)",
    )
    parser.add_argument(
        "--margin",
        type=float,
        default=0.0,
        help="margin of the rules that give none (default 0: the interval must exclude any loss)",
    )
    parser.add_argument(
        "--bootstrap",
        type=positive_int,
        default=DEFAULT_RESAMPLES,
        help=f"paired bootstrap resamples (default {DEFAULT_RESAMPLES})",
    )
    parser.add_argument("--seed", type=int, default=42, help="bootstrap seed (default 42)")
    parser.add_argument(
        "--confidence",
        type=float,
        default=DEFAULT_CONFIDENCE,
        help=f"two-sided level of the percentile intervals (default {DEFAULT_CONFIDENCE})",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        help="folder for comparison.json, comparison.md and reliability.png "
        "(default ./compare-report/<UTC time>)",
    )
    parser.add_argument(
        "--trusted-keys",
        type=Path,
        default=os.environ.get(TRUSTED_KEYS_ENV) or None,
        help=f"PEM file of trusted Ed25519 public keys (default ${TRUSTED_KEYS_ENV}); with it, a "
        "build must be signed by one of them (an unsigned build is refused)",
    )
    parser.add_argument(
        "--require-signed",
        action="store_true",
        default=None,
        help=f"refuse to run without trusted keys (default ${REQUIRE_SIGNED_ENV})",
    )
    parser.add_argument(
        "--allow-library-mismatch",
        action="store_true",
        help="score a build made with other scikit-learn/xgboost versions (the consumer's "
        "ALLOW_LIBRARY_MISMATCH)",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def _arguments(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    args = parser.parse_args(argv)
    try:
        args.rules = tuple(Rule.parse(text, args.margin) for text in args.rule or ["brier"])
    except ValueError as exc:
        parser.error(f"--rule: {exc}")
    if not (math.isfinite(args.margin) and args.margin >= 0):
        parser.error(f"--margin must be a finite number >= 0, got {args.margin}")
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence must be between 0 and 1, got {args.confidence}")
    for option in ("champion", "challenger"):
        try:
            parse_location(getattr(args, option))
        except StorageError as exc:
            parser.error(f"--{option}: {exc}")
    if args.require_signed is None:
        flag = os.environ.get(REQUIRE_SIGNED_ENV, "").strip()
        required = parse_bool(flag) if flag else False
        if required is None:
            parser.error(f"{REQUIRE_SIGNED_ENV} must be true or false")
        args.require_signed = required
    if args.require_signed and args.trusted_keys is None:
        parser.error(
            f"signed builds are required ({REQUIRE_SIGNED_ENV} or --require-signed) but no "
            f"trusted keys are given (--trusted-keys or {TRUSTED_KEYS_ENV})"
        )
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(_parser(), argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    report = args.report or Path("compare-report") / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    try:
        comparison = _run(args)
        write_report(comparison, report)
    except (CompareError, DataError, StorageError, ContractError, OSError) as exc:
        # BuildGateError is a ContractError: its message names the gate and the build.
        print(f"compare: nothing decided: {exc}", file=sys.stderr)
        return EXIT_UNDECIDED
    print("\n".join(_heading(comparison)))
    print()
    print(format_table(comparison))
    print()
    print(comparison.verdict())
    print(f"report: {report}")
    return EXIT_NOT_WORSE if comparison.not_worse else EXIT_WORSE


def _run(args: argparse.Namespace) -> Comparison:
    store = Store(S3Options.from_environ())
    with tempfile.TemporaryDirectory(prefix="compare-builds-") as cache:
        opened: dict[Role, CheckedBuild] = {}
        roles: tuple[Role, ...] = ("champion", "challenger")
        for role in roles:
            uri = getattr(args, role)
            try:
                opened[role] = open_build(
                    uri, role, store, Path(cache), args.trusted_keys, args.allow_library_mismatch
                )
            except BuildGateError as exc:
                raise BuildGateError(exc.gate, f"the {role} ({uri}): {exc.reason}") from exc
        loaded = load_sessions(args.data, table=args.table, store=store)
        features, labels = split_features_label(loaded.frame)
        return compare(
            (args.champion, opened["champion"]),
            (args.challenger, opened["challenger"]),
            features,
            labels,
            args.rules,
            resamples=args.bootstrap,
            seed=args.seed,
            confidence=args.confidence,
            data={"uri": loaded.uri, "sha256": loaded.sha256, "format": loaded.format},
        )
