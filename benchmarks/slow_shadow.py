"""``--shadow slow``: the primary beside a deliberately slow shadow, against no shadow at all.

The shadow is the build's other variant whose final estimator sleeps ``--slow-shadow-ms`` per
batch on the shadow's thread (``tests.integration.consumer.doctored.SlowOffTheMainThread``: it
passes every gate at full speed, on the main thread, and keeps the fast path). Two pairs, each
back to back in this one invocation, so that both halves share the machine's load of the moment:

- throughput on the pre-filled input at the largest batch size: ``consumer-<B>`` then
  ``slow-shadow-<B>``;
- latency at the first offered rate: ``latency-<rate>`` then ``slow-shadow-latency-<rate>``.

Ratios: ``slow-shadow-<B>/consumer-<B>`` (events/s) and ``slow-shadow p99|p50 at <rate>/s /
no shadow`` (target: within 5 % of no shadow).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import joblib

from benchmarks.measure import BenchmarkError
from benchmarks.results import Options, Results
from benchmarks.runs import Topics, latency_run, throughput_run
from benchmarks.workload import Payload
from scoring.settings import ModelSettings
from tests.integration.consumer.doctored import copy_build, replace_artifact, slow_pipeline

logger = logging.getLogger("benchmarks")


def slow_shadow_uri(model_uri: str, work: Path, seconds: float) -> str:
    """A copy of the build whose other variant sleeps ``seconds`` per batch off the main thread,
    its manifest's sha256 updated so that it passes the gates (unsigned: no MODEL_TRUSTED_KEYS)."""
    artifact = ModelSettings.model_construct(model_uri=model_uri).model_path
    other = (
        "best_model_no_page_values.joblib"
        if artifact.name == "best_model_full.joblib"
        else "best_model_full.joblib"
    )
    build = copy_build(artifact.parent, work / "slow-shadow-build")
    pipeline = joblib.load(artifact.parent / other)
    replace_artifact(build, other, slow_pipeline(pipeline, seconds), update_manifest=True)
    return (build / other).as_uri()


def slow_shadow_comparison(
    opts: Options,
    topics: Topics,
    input_topic: str,
    payloads: Sequence[Payload],
    results: Results,
) -> None:
    seconds = opts.slow_shadow_ms / 1000
    shadow = {"SHADOW_MODEL_URI": slow_shadow_uri(opts.model_uri, opts.work, seconds)}
    notes = f"shadow sleeps {opts.slow_shadow_ms} ms per batch"
    batch = max(opts.batch_sizes)
    baseline = throughput_run(
        opts, topics, input_topic, f"consumer-{batch}", "consumer", batch, opts.events
    )
    slow = throughput_run(
        opts,
        topics,
        input_topic,
        f"slow-shadow-{batch}",
        "consumer",
        batch,
        opts.events,
        None,
        **shadow,
    )
    counts = _check_shadowed(opts.work / f"slow-shadow-{batch}.log")
    slow.notes = f"{slow.notes} {notes}; batches {counts}".strip()
    results.throughput += [baseline, slow]
    results.ratios[f"slow-shadow-{batch}/consumer-{batch}"] = round(
        slow.events_per_s / baseline.events_per_s, 3
    )
    rate = opts.rates[0]
    plain = latency_run(opts, topics, payloads, rate)
    with_shadow = latency_run(
        opts, topics, payloads, rate, f"slow-shadow-latency-{rate}", settings=shadow
    )
    results.latency += [plain, with_shadow]
    logger.info(
        "slow shadow at %d/s: batches %s",
        rate,
        _check_shadowed(opts.work / f"slow-shadow-latency-{rate}.log"),
    )
    for quantile in ("p50", "p99"):
        ratio = getattr(with_shadow, f"{quantile}_ms") / getattr(plain, f"{quantile}_ms")
        results.ratios[f"slow-shadow {quantile} at {rate}/s / no shadow"] = round(ratio, 3)


def _check_shadowed(log: Path) -> str:
    """The shadow was in service, compared batches and was not switched off: the comparison is
    of what it claims. Returns the batches it compared and dropped, from its closing log line."""
    text = log.read_text(errors="replace")
    if "shadow scoring build_id=" not in text:
        raise BenchmarkError(f"{log.name}: the slow shadow was not in service")
    if "the shadow is switched off" in text:
        raise BenchmarkError(f"{log.name}: the slow shadow was switched off")
    closed = re.search(r"shadowed=(\d+) dropped=(\d+)", text)
    if closed is None or int(closed[1]) == 0:
        raise BenchmarkError(f"{log.name}: the slow shadow compared no batch")
    return f"shadowed {closed[1]}, dropped {closed[2]}"
