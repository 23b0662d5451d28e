"""``python -m training cycle``: the retraining loop in one command, what the CronJob runs.

1. **Collect** what production saw (``training.collect``) over a time range, in two datasets:
   the range less its last ``--fresh`` (``<datasets>/<cycle id>/train``) and that last
   ``--fresh`` (``.../fresh``). The range ends ``OUTCOME_WINDOW`` before now by default, so that
   every session in it has had its whole window to get an outcome.
2. **Train** a new build on ``train`` into the registry (``python -m training``, split by time).
3. **Compare** it with the champion, the build in service (``--champion``, default
   ``$MODEL_URI``: the scorer's own setting), on ``fresh``: outcomes neither build trained on
   (``training.compare``: both builds through the gates, a paired bootstrap, the rule).
4. **Record the verdict**: the comparison report in the challenger's build folder
   (``<registry>/<build id>/comparison/``: comparison.json, comparison.md, reliability.png), a
   log line, and ``VERDICT=``, ``CHALLENGER=``, ``REPORT=`` on stdout.

Promotion stays a human or CD step (switching ``MODEL_URI``, docs/operations.md). Each step runs
through its own command's ``main`` with the arguments a user would type, so the cycle adds no
second way of doing any of them. Exit 0 when a verdict was reached, either way (a challenger that
is not better is a normal week, not a failed Job); 1 when a step failed; 2 for bad arguments or
settings, or when nothing could be decided (no fresh outcomes, a gate refusal).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from contract.durations import duration_seconds
from contract.storage import S3Options, StorageError, Store, join, parse_location
from training.collect import DEFAULT_WINDOW_S
from training.compare import EXIT_NOT_WORSE, EXIT_WORSE
from training.registry import list_builds
from training.timerange import iso_ms, parse_instant

logger = logging.getLogger(__name__)

EXIT_VERDICT: Final = 0
EXIT_FAILED: Final = 1
EXIT_UNDECIDED: Final = 2
DEFAULT_SINCE: Final = "28d"
DEFAULT_FRESH: Final = "2d"
REPORT_FOLDER: Final = "comparison"
ARTIFACT_PREFIX, ARTIFACT_SUFFIX = "best_model_", ".joblib"

Step = Callable[[Sequence[str]], int]


class CycleError(Exception):
    """A step of the cycle could not run or failed; ``exit_status`` says which kind."""

    def __init__(self, message: str, exit_status: int) -> None:
        super().__init__(message)
        self.exit_status = exit_status


@dataclass(frozen=True)
class Ranges:
    """Milliseconds since the epoch, both ends included: ``train`` then ``fresh``, adjacent."""

    train_from: int
    fresh_from: int
    to: int

    @classmethod
    def of(
        cls,
        since: str | None,
        from_: str | None,
        to: str | None,
        fresh: str,
        now_ms: int,
        window_s: float,
    ) -> Ranges:
        """The cycle's ranges; ValueError saying what is wrong."""
        if since is not None and from_ is not None:
            raise ValueError("give --since or --from, not both")
        end = parse_instant(to) if to is not None else now_ms - round(window_s * 1000)
        start = (
            parse_instant(from_)
            if from_ is not None
            else end - round(duration_seconds(since or DEFAULT_SINCE) * 1000)
        )
        fresh_from = end - round(duration_seconds(fresh) * 1000) + 1
        if not start < fresh_from - 1 < end:
            raise ValueError(
                f"--fresh {fresh} leaves nothing to train on in {iso_ms(start)}..{iso_ms(end)}"
            )
        return cls(start, fresh_from, end)


def variant_of(model_uri: str) -> str:
    """The variant a MODEL_URI names (``.../best_model_full.joblib`` -> ``full``)."""
    name = model_uri.rstrip("/").rsplit("/", 1)[-1]
    if not (name.startswith(ARTIFACT_PREFIX) and name.endswith(ARTIFACT_SUFFIX)):
        raise ValueError(f"{model_uri!r} does not name a best_model_<variant>.joblib artifact")
    return name[len(ARTIFACT_PREFIX) : -len(ARTIFACT_SUFFIX)]


@dataclass(frozen=True)
class Steps:
    """The commands the cycle runs (their ``main``), replaceable in tests of the wiring."""

    collect: Step
    train: Step
    compare: Step


def _default_steps(env: Mapping[str, str]) -> Steps:
    from training.__main__ import main as training_main
    from training.collect import main as collect_main
    from training.compare import main as compare_main

    return Steps(lambda argv: collect_main(argv, env), training_main, compare_main)


@dataclass(frozen=True)
class Outcome:
    verdict: str
    challenger: str
    report: str
    train_data: str
    fresh_data: str


def run_cycle(args: argparse.Namespace, store: Store, steps: Steps, now_ms: int) -> Outcome:
    ranges = Ranges.of(args.since, args.from_, args.to, args.fresh, now_ms, args.outcome_window_s)
    variant = variant_of(args.champion)
    cycle_id = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    datasets = args.datasets or join(args.registry, "datasets")
    train_data = join(datasets, cycle_id, "train")
    fresh_data = join(datasets, cycle_id, "fresh")
    logger.info(
        "cycle %s: train on %s..%s, compare on %s..%s, champion %s",
        cycle_id,
        iso_ms(ranges.train_from),
        iso_ms(ranges.fresh_from - 1),
        iso_ms(ranges.fresh_from),
        iso_ms(ranges.to),
        args.champion,
    )
    for out, low, high in (
        (train_data, ranges.train_from, ranges.fresh_from - 1),
        (fresh_data, ranges.fresh_from, ranges.to),
    ):
        _step(steps.collect, "collect", ["--out", out, "--from", iso_ms(low), "--to", iso_ms(high)])
    before = {build.build_id for build in list_builds(args.registry, store)[0]}
    train = ["--data", train_data, "--out", args.registry, "--variants", variant]
    train += ["--n-iter", str(args.n_iter)]
    train += [] if args.families is None else ["--families", args.families]
    train += [] if args.n_jobs is None else ["--n-jobs", str(args.n_jobs)]
    train += [] if args.signing_key is None else ["--signing-key", str(args.signing_key)]
    _step(steps.train, "train", ["train", *train])
    new = [build for build in list_builds(args.registry, store)[0] if build.build_id not in before]
    if len(new) != 1:
        raise CycleError(f"training left {len(new)} new builds in {args.registry}", EXIT_FAILED)
    (challenger,) = [a.model_uri for a in new[0].artifacts if a.variant == variant]
    report = join(args.registry, new[0].build_id, REPORT_FOLDER)
    with tempfile.TemporaryDirectory(prefix="cycle-report-") as scratch:
        location = parse_location(report)
        local = location if isinstance(location, Path) else Path(scratch)
        compare = ["--champion", args.champion, "--challenger", challenger, "--data", fresh_data]
        compare += ["--report", str(local), "--bootstrap", str(args.bootstrap)]
        compare += [f"--rule={rule}" for rule in args.rule or ()]
        compare += ["--margin", str(args.margin)]
        compare += [] if args.trusted_keys is None else ["--trusted-keys", str(args.trusted_keys)]
        status = _status(steps.compare, compare)
        if status not in (EXIT_NOT_WORSE, EXIT_WORSE):
            raise CycleError("compare decided nothing (its reason is above)", EXIT_UNDECIDED)
        if not isinstance(location, Path):
            for path in sorted(local.iterdir()):
                store.put_file(path, join(report, path.name))
    verdict = "not_worse" if status == EXIT_NOT_WORSE else "worse"
    return Outcome(verdict, challenger, report, train_data, fresh_data)


def _step(step: Step, name: str, argv: list[str]) -> None:
    logger.info("cycle step %s: %s", name, " ".join(argv))
    status = _status(step, argv)
    if status == 2:
        raise CycleError(f"{name} refused its arguments or settings (exit 2)", EXIT_UNDECIDED)
    if status != 0:
        raise CycleError(f"{name} failed (exit {status}; its reason is above)", EXIT_FAILED)


def _status(step: Step, argv: list[str]) -> int:
    """The step's exit status (argparse's usage errors exit 2 by raising SystemExit)."""
    try:
        return step(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_UNDECIDED


def command_line(env: Mapping[str, str]) -> argparse.ArgumentParser:
    """The command line of `python -m training cycle` (`env` gives the defaults)."""
    parser = argparse.ArgumentParser(
        prog="python -m training cycle",
        description="Collect what production saw, train a challenger on it, compare it with the "
        "build in service on the freshest outcomes, and record the verdict.",
    )
    parser.add_argument(
        "--registry", required=True, help="the registry: a directory or an s3://bucket/prefix"
    )
    parser.add_argument(
        "--champion",
        default=env.get("MODEL_URI") or None,
        help="the build in service, as MODEL_URI names it (default $MODEL_URI)",
    )
    parser.add_argument(
        "--since",
        help=f"the range: the last D before its end (default {DEFAULT_SINCE})",
    )
    parser.add_argument(
        "--from", dest="from_", metavar="TIME", help="the range's start, ISO 8601 (UTC)"
    )
    parser.add_argument(
        "--to",
        metavar="TIME",
        help="the range's end (default: now - OUTCOME_WINDOW, every window closed)",
    )
    parser.add_argument(
        "--fresh",
        default=DEFAULT_FRESH,
        help="the range's last part, kept for the comparison and never trained on "
        f"(default {DEFAULT_FRESH})",
    )
    parser.add_argument(
        "--datasets",
        default=None,
        help="where the collected datasets go (default <registry>/datasets)",
    )
    parser.add_argument("--n-iter", type=int, default=20, help="training's --n-iter")
    parser.add_argument("--families", default=None, help="training's --families")
    parser.add_argument("--n-jobs", type=int, default=None, help="training's --n-jobs")
    parser.add_argument("--signing-key", type=Path, default=None, help="training's --signing-key")
    parser.add_argument(
        "--rule", action="append", help="compare's --rule METRIC[:MARGIN] (repeatable)"
    )
    parser.add_argument("--margin", type=float, default=0.0, help="compare's --margin")
    parser.add_argument("--bootstrap", type=int, default=1000, help="compare's --bootstrap")
    parser.add_argument("--trusted-keys", type=Path, default=None, help="compare's --trusted-keys")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING"])
    return parser


def main(
    argv: Sequence[str],
    environ: Mapping[str, str] | None = None,
    steps: Steps | None = None,
    clock: Callable[[], float] = time.time,
) -> int:
    env = os.environ if environ is None else environ
    parser = command_line(env)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    if args.champion is None:
        parser.error("the build in service is needed: --champion URI or MODEL_URI")
    try:
        window = env.get("OUTCOME_WINDOW")
        args.outcome_window_s = duration_seconds(window) if window else DEFAULT_WINDOW_S
    except ValueError as exc:
        parser.error(f"OUTCOME_WINDOW: {exc}")
    try:
        variant_of(args.champion)
        Ranges.of(args.since, args.from_, args.to, args.fresh, 0, 0.0)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        outcome = run_cycle(
            args,
            Store(S3Options.from_environ(env)),
            steps or _default_steps(env),
            round(clock() * 1000),
        )
    except CycleError as exc:
        logger.error("cycle stopped: %s", exc)
        return exc.exit_status
    except StorageError as exc:
        logger.error("cycle stopped: %s", exc)
        return EXIT_FAILED
    logger.info(
        "cycle verdict=%s champion=%s challenger=%s report=%s",
        outcome.verdict,
        args.champion,
        outcome.challenger,
        outcome.report,
    )
    print(f"CHAMPION={args.champion}")
    print(f"CHALLENGER={outcome.challenger}")
    print(f"VERDICT={outcome.verdict}")
    print(f"REPORT={outcome.report}")
    if outcome.verdict == "not_worse":
        print(
            "to promote: MODEL_URI="
            f"{outcome.challenger} in deploy/k8s/overlays/<env>/model.env (docs/operations.md)"
        )
    return EXIT_VERDICT
