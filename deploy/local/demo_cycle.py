"""The retraining cycle, end to end on this machine: ``make cycle``.

1. **The champion** (``demo.running``, as ``make demo`` starts it): a local Kafka broker (or
   ``KAFKA_BOOTSTRAP_SERVERS``), the newest build of the dataset in ``--registry`` (one trained
   when there is none), served by ``python -m consumer`` with ``python -m quality`` beside it; the
   outcome window is short (``--outcome-window``, 2 minutes) so that it closes during the demo.
2. **Stretch A**: sessions of the dataset with their real outcomes; the live figures are about
   the build's test figures.
3. **Stretch B**: generated sessions whose purchase behaviour has changed (page values now put
   people off buying; the same columns and ranges) and their outcomes, sent as an order system
   sends them; the live quality drops.
4. **The cycle**: ``python -m training cycle`` over stretch B, run as a user runs it. It collects
   the labelled sessions from the topics, trains a challenger on all but the stretch's last
   quarter, and compares it with the champion on that last quarter.
5. **The summary**: both builds' figures on those fresh outcomes (the cycle's
   ``comparison.json``), the verdict, and what to run to promote the challenger.

``--s3`` keeps the registry, the collected datasets and the report in a local S3 server, as
``make demo DEMO_ARGS=--s3`` does. Everything started is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

from demo import (
    REPO,
    Services,
    add_common_options,
    consumer_settings,
    drift,
    running,
    wait_scored,
)
from demo_messages import changed_messages, paced, sampled_messages
from demo_quality import join_settings, print_figures, send_outcomes, wait_judged

from benchmarks.replay import KeyValue, produce_messages  # root on PYTHONPATH
from contract.durations import duration_seconds
from contract.storage import S3Options, Store, join
from training.collect import GRACE_S
from training.cycle import Ranges
from training.timerange import iso_ms

OUTCOME_MARGIN_S = 30.0
"""Scoring, sending the outcomes and the monitor's judgement after stretch B, at most."""
RULES = ("roc_auc", "brier")
"""The cycle's --rule: the challenger must rank and be calibrated at least as well."""


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    timings: dict[str, float] = {}
    with running(args, outcome_window=args.outcome_window) as demo:
        timings["broker, champion, consumer and monitor ready"] = time.monotonic() - started
        lap = time.monotonic()
        purchases: dict[str, bool] = {}
        messages = sampled_messages(args.data, args.unchanged, purchases)
        print(
            f"\n==> stretch A: {len(messages):,} sessions of the dataset as they were, at "
            f"{args.rate:.0f}/s, and their real outcomes"
        )
        unchanged = replay(demo, messages, purchases, args.rate, 0, "stretch A (as trained)")
        timings["stretch A"] = time.monotonic() - lap
        lap = time.monotonic()
        purchases = {}
        messages = changed_messages(args.changed, args.seed, purchases)
        print(
            f"\n==> stretch B: {len(messages):,} sessions whose purchase behaviour changed (page "
            f"values now put people off buying), at {args.rate:.0f}/s, and their outcomes"
        )
        changed = replay(
            demo, messages, purchases, args.rate, unchanged.sessions, "stretch B (changed)"
        )
        timings["stretch B"] = time.monotonic() - lap
        lap = time.monotonic()
        # The collect counts a partition read to the end of its log as complete only up to
        # GRACE_S before it started: wait that long after the last outcome, so that every
        # session of the stretch is decided (none left out as `window_open`).
        time.sleep(max(0.0, changed.outcomes_sent_ms / 1000 + GRACE_S + 1 - time.time()))
        fresh = fresh_duration(changed.from_ms, changed.to_ms, args.fresh_share)
        command = cycle_command(demo.registry, changed, fresh, args)
        printed = run_cycle(command, cycle_settings(demo, args.outcome_window), demo.store_env)
        timings["the cycle (collect, train, compare)"] = time.monotonic() - lap
        comparison = read_comparison(printed["REPORT"], demo.store_env)
        timings["total"] = time.monotonic() - started
        for line in summary_lines(comparison, printed, changed, fresh, demo, timings):
            print(line)
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_options(parser, rate=500)
    parser.add_argument(
        "--unchanged", type=int, default=4000, help="stretch A: sessions of the dataset"
    )
    parser.add_argument(
        "--changed", type=int, default=8000, help="stretch B: sessions whose behaviour changed"
    )
    parser.add_argument("--seed", type=int, default=7, help="stretch B's generator seed")
    parser.add_argument(
        "--outcome-window", default="2m", help="OUTCOME_WINDOW of the monitor and the collect"
    )
    parser.add_argument(
        "--fresh-share",
        type=float,
        default=0.25,
        help="the last share of stretch B the cycle keeps for the comparison (--fresh)",
    )
    parser.add_argument("--cycle-n-iter", type=int, default=4, help="the cycle's --n-iter")
    parser.add_argument(
        "--families", default="logistic_regression,xgboost", help="the cycle's --families"
    )
    args = parser.parse_args(argv)
    if not 0 < args.fresh_share < 1:
        parser.error(f"--fresh-share must be between 0 and 1, got {args.fresh_share}")
    try:
        window_s = duration_seconds(args.outcome_window)
    except ValueError as exc:
        parser.error(f"--outcome-window: {exc}")
    # Stretch B's first sessions get their outcomes after its last one is scored: all of them
    # must come within the window, or the collect leaves those sessions out.
    if args.changed / args.rate + OUTCOME_MARGIN_S > window_s:
        parser.error(
            f"stretch B lasts {args.changed / args.rate:.0f} s at --rate {args.rate:g}: its "
            f"outcomes would come after --outcome-window {args.outcome_window}; raise either"
        )
    return args


@dataclass(frozen=True)
class Stretch:
    """Sessions replayed between two instants (ms since the epoch, both included): their
    records' timestamps, the produce time, fall within; their outcomes were all acknowledged
    at `outcomes_sent_ms`."""

    sessions: int
    from_ms: int
    to_ms: int
    outcomes_sent_ms: int


def replay(
    demo: Services,
    messages: list[KeyValue],
    purchases: dict[str, bool],
    rate: float,
    judged: int,
    title: str,
) -> Stretch:
    """Produce the sessions at `rate`, wait for the consumer to score them, send their outcomes
    as the order system would, and print the monitor's live figures once it judged them (and the
    `judged` sessions before them)."""
    scored_before = drift(demo.metrics_url)[0]
    from_ms = math.floor(time.time() * 1000)  # before the first record's timestamp
    produce_messages(demo.bootstrap, demo.topics["input"], paced(messages, rate))
    to_ms = math.ceil(time.time() * 1000)  # after the last one's (every one acknowledged)
    scored = wait_scored(demo.metrics_url, scored_before + len(messages))[0]
    sent = send_outcomes(demo.bootstrap, demo.topics["outcomes"], purchases, purchases)
    outcomes_sent_ms = math.ceil(time.time() * 1000)
    print(f"    consumer scored {scored:,.0f} in all; the order system sent {sent:,} outcomes")
    print_figures(title, wait_judged(demo.quality_url, judged + sent))
    return Stretch(len(messages), from_ms, to_ms, outcomes_sent_ms)


def fresh_duration(from_ms: int, to_ms: int, share: float) -> str:
    """The cycle's ``--fresh``: the last `share` of the range, in seconds to the millisecond
    (``90s``, ``2.5s``: contract.durations reads both)."""
    if not 0 < share < 1:
        raise ValueError(f"the fresh share must be between 0 and 1, got {share}")
    milliseconds = max(1, round((to_ms - from_ms) * share))
    return f"{milliseconds / 1000:.3f}".rstrip("0").rstrip(".") + "s"


def cycle_command(
    registry: str, stretch: Stretch, fresh: str, args: argparse.Namespace
) -> list[str]:
    """``python -m training cycle`` over the stretch, as a user types it."""
    return [
        sys.executable, "-m", "training", "cycle",
        "--registry", registry,
        "--from", iso_ms(stretch.from_ms), "--to", iso_ms(stretch.to_ms), "--fresh", fresh,
        "--n-iter", str(args.cycle_n_iter), "--families", args.families,
        *(option for rule in RULES for option in ("--rule", rule)),
    ]  # fmt: skip


def cycle_settings(demo: Services, outcome_window: str) -> dict[str, str]:
    """What the collect needs (the brokers, the topics, the monitor's join rule) and the
    champion (MODEL_URI: the build in service); with --s3 the store's settings come on top. Not
    the consumer nor the monitor: the cycle reads the topics by record time."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": demo.bootstrap,
        "INPUT_TOPIC": demo.topics["input"],
        "OUTCOME_TOPIC": demo.topics["outcomes"],
        **join_settings(outcome_window),
        "MODEL_URI": demo.model_uri,
    }


def shell_line(settings: dict[str, str], store_env: dict[str, str], command: list[str]) -> str:
    """A command as a user types it, its settings in front (the S3 client's by name only)."""
    names = " ".join(f"{name}={value}" for name, value in settings.items())
    store = " AWS_*=<the S3 server's settings>" if store_env else ""
    return f"{names}{store} {' '.join(command)}"


def run_cycle(
    command: list[str], settings: dict[str, str], store_env: dict[str, str]
) -> dict[str, str]:
    """Run the cycle (its log on standard error as it goes); its ``KEY=value`` lines."""
    shown = shell_line(settings, store_env, [".venv/bin/python", *command[1:]])
    print(f"\n==> the cycle, over stretch B:\n    {shown}")
    env = {**os.environ, **store_env, **settings}
    result = subprocess.run(command, env=env, cwd=REPO, stdout=subprocess.PIPE, text=True)
    print(result.stdout, end="")
    if result.returncode != 0:
        raise SystemExit(f"the cycle stopped with exit status {result.returncode} (log above)")
    return printed_settings(result.stdout)


def printed_settings(stdout: str) -> dict[str, str]:
    """The ``KEY=value`` lines a command printed (``VERDICT=``, ``CHALLENGER=``, ...)."""
    found: dict[str, str] = {}
    for line in stdout.splitlines():
        key, separator, value = line.partition("=")
        if separator and key.isupper() and key.replace("_", "").isalnum():
            found[key] = value
    return found


def read_comparison(report: str, store_env: dict[str, str]) -> dict[str, Any]:
    """The cycle's ``<report>/comparison.json``, from a directory or the S3 server."""
    raw = Store(S3Options.from_environ(store_env)).read_bytes(join(report, "comparison.json"))
    document: dict[str, Any] = json.loads(raw)
    return document


def summary_lines(
    comparison: dict[str, Any],
    printed: dict[str, str],
    stretch: Stretch,
    fresh: str,
    demo: Services,
    timings: dict[str, float],
) -> list[str]:
    """The summary: the fresh outcomes, both builds on them, the verdict, how to promote."""
    ranges = Ranges.of(None, iso_ms(stretch.from_ms), iso_ms(stretch.to_ms), fresh, 0, 0.0)
    champion, challenger = comparison["champion"], comparison["challenger"]
    data = comparison["data"]
    width = f"{comparison['bootstrap']['confidence']:.0%}"
    lines = [
        "",
        "================ the retraining cycle: summary ================",
        f"stretch B        {stretch.sessions:,} sessions whose behaviour changed, "
        f"{iso_ms(stretch.from_ms)} .. {iso_ms(stretch.to_ms)}",
        f"trained on       {iso_ms(ranges.train_from)} .. {iso_ms(ranges.fresh_from - 1)}",
        f"fresh outcomes   {iso_ms(ranges.fresh_from)} .. {iso_ms(ranges.to)} (--fresh {fresh}):"
        f" {data['rows']:,} sessions, {data['positives']:,} purchases, neither build trained on",
    ]
    for role, build in (("champion", champion), ("challenger", challenger)):
        lines.append(
            f"{role:<17}{build['build_id']} ({build['variant']}, {build['estimator']}, "
            f"threshold {build['threshold']:.4f}) {build['uri']}"
        )
    lines.append(
        f"\n{'':10}{'champion':>10}{'challenger':>12}{'difference':>12}   {width} interval"
        " (challenger - champion, paired bootstrap)"
    )
    for name, difference in comparison["differences"].items():
        lines.append(
            f"{name:10}{_figure(champion['metrics'][name]):>10}"
            f"{_figure(challenger['metrics'][name]):>12}{_signed(difference['estimate']):>12}"
            f"   [{_signed(difference['lower'])}, {_signed(difference['upper'])}]"
            f"  ({difference['better']} is better)"
        )
    verdict = comparison["verdict"]
    lines.append(
        f"\nverdict          {verdict.replace('_', ' ').upper()}: "
        + (
            "the challenger is not worse by any rule"
            if verdict == "not_worse"
            else "the challenger is worse by a rule: keep the champion"
        )
    )
    for rule in comparison["rules"]:
        held = "holds" if rule["holds"] else "fails"
        lines.append(f"  {rule['test']}: {_signed(rule['bound'])}, {held}")
    lines.append(f"report           {printed['REPORT']}")
    lines.append("timings          " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
    if verdict == "not_worse":
        lines.extend(promotion_lines(printed["CHALLENGER"], demo))
    return lines


def promotion_lines(challenger: str, demo: Services) -> list[str]:
    """What to run to promote the challenger: the one line of an overlay, or locally the
    consumer started again on it (the demo's own settings but MODEL_URI)."""
    settings = consumer_settings(demo.bootstrap, demo.topics, challenger)
    consumer = shell_line(settings, demo.store_env, [".venv/bin/python", "-m", "consumer"])
    return [
        "to promote it (docs/operations.md, Promote a build):",
        "  in Kubernetes, the one line of deploy/k8s/overlays/<env>/model.env, then "
        "kubectl apply -k deploy/k8s/overlays/<env>:",
        f"    MODEL_URI={challenger}",
        "  here, stop the consumer and start it again on the challenger:",
        f"    {consumer}",
    ]


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _signed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.5f}"


if __name__ == "__main__":
    sys.exit(main())
