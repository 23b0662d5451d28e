"""The benchmark's results: what each run measured, the targets, the table and the JSON."""

from __future__ import annotations

import logging
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson

from benchmarks import adversarial
from benchmarks.adversarial import KindCost
from benchmarks.stages import StageCost
from benchmarks.stages import table as stages_table
from benchmarks.stages import total as stages_total

logger = logging.getLogger("benchmarks")

DEFAULT_EVENTS = 200_000
DEFAULT_BATCH_SIZES = (100, 500, 1000, 5000)
DEFAULT_RATES = (2000, 20_000)
PARTITIONS = 3
MB = 1024 * 1024
PASSTHROUGH = "benchmarks.passthrough"
FLOOR_PREFIX = "passthrough-latency-"
"""Names of the passthrough's latency runs (the floor the consumer's are compared with)."""


@dataclass
class Options:
    events: int
    batch_sizes: tuple[int, ...]
    rates: tuple[int, ...]
    latency_seconds: float
    latency_batch_wait_ms: int | None
    naive_events: int
    naive_seconds: float
    memory_events: int
    memory_checkpoint: int
    model_uri: str
    bootstrap: str | None
    out: Path
    work: Path
    quick: bool
    shadow: str = "also"
    slow_shadow_ms: int = 200


@dataclass
class Throughput:
    name: str
    batch_size: int
    events: int
    seconds: float
    events_per_s: float
    cpu_s_per_1000: float
    peak_rss_mb: float
    notes: str = ""


@dataclass
class Latency:
    offered_per_s: int
    events: int
    measured: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    batch_max_wait_ms: int
    name: str = ""


@dataclass
class Memory:
    events: int
    checkpoint: int
    rss_at_checkpoint_mb: float
    rss_at_end_mb: float
    growth: float
    peak_rss_mb: float
    events_per_s: float


@dataclass
class Results:
    started_at: str
    command: str
    machine: dict[str, Any]
    model: dict[str, Any]
    options: dict[str, Any]
    throughput: list[Throughput] = field(default_factory=list)
    latency: list[Latency] = field(default_factory=list)
    memory: Memory | None = None
    adversarial_decode: list[KindCost] = field(default_factory=list)
    stages: list[StageCost] = field(default_factory=list)
    """CPU per event of each of the consumer's stages, in process (benchmarks.stages)."""
    ratios: dict[str, float] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)
    seconds_total: float = 0.0


# --- the environment ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    cpu = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    load = os.getloadavg()
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu,
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in load],
    }


def model_summary(model_uri: str) -> dict[str, Any]:
    from consumer.settings import Settings

    path = Settings.model_construct(model_uri=model_uri).model_path
    manifest = orjson.loads((path.parent / "manifest.json").read_bytes())
    entry = manifest["artifacts"][path.name]
    return {
        "model_uri": model_uri,
        "build_id": manifest["build_id"],
        "variant": entry["variant"],
        "family": entry.get("family"),
        "estimator": entry.get("estimator"),
        "best_params": entry.get("best_params"),
        "trained_on": manifest.get("data", {}).get("uri"),
    }


# --- the report ----------------------------------------------------------------------------------


def summarise(results: Results) -> None:
    by_name = {run.name: run for run in results.throughput}
    ceiling, naive = by_name.get("ceiling"), by_name.get("naive")
    shipped = [run for run in results.throughput if run.name.startswith("consumer")]
    best = max(shipped, key=lambda run: run.events_per_s, default=None)
    if best is not None and ceiling is not None:
        for run in shipped:
            results.ratios[f"{run.name}/ceiling"] = round(
                run.events_per_s / ceiling.events_per_s, 3
            )
    if best is not None and naive is not None:
        for run in shipped:
            results.ratios[f"{run.name}/naive"] = round(run.events_per_s / naive.events_per_s, 1)
    p99 = {lat.offered_per_s: lat.p99_ms for lat in results.latency if _plain(lat.name)}
    floor_p99 = {
        lat.offered_per_s: lat.p99_ms
        for lat in results.latency
        if lat.name.startswith(FLOOR_PREFIX)
    }
    memory = results.memory
    at_1000, eos = by_name.get("consumer-1000"), by_name.get("consumer-exactly-once-1000")
    drift_off = by_name.get("consumer-drift-off-1000")
    if at_1000 is not None and drift_off is not None:
        # What the drift sentinel costs, in CPU per event (at_1000 has it on: the default).
        results.ratios["drift sentinel CPU us/event"] = round(
            (at_1000.cpu_s_per_1000 - drift_off.cpu_s_per_1000) * 1000, 2
        )
    results.targets = {
        "events_per_s >= 75000 (batch 1000)": _verdict(
            at_1000.events_per_s >= 75_000 if at_1000 else None
        ),
        "x naive >= 100": _verdict(
            best.events_per_s / naive.events_per_s >= 100 if best and naive else None
        ),
        "share of ceiling >= 0.8 (batch 1000)": _verdict(
            at_1000.events_per_s / ceiling.events_per_s >= 0.8 if at_1000 and ceiling else None
        ),
        "CPU per event <= 12 us (batch 1000)": _verdict(
            at_1000.cpu_s_per_1000 <= 0.012 if at_1000 else None
        ),
        "exactly_once / at_least_once >= 0.5": _verdict(
            eos.events_per_s / at_1000.events_per_s >= 0.5 if eos and at_1000 else None
        ),
        "p99 at 2000/s <= 15 ms": _verdict(p99[2000] <= 15 if 2000 in p99 else None),
        "p99 at 20000/s <= 30 ms": _verdict(p99[20_000] <= 30 if 20_000 in p99 else None),
        "rss growth checkpoint->end <= 10 %": _verdict(
            memory.growth <= 0.10 if memory is not None else None
        ),
    }
    # Issue 25's goals: each a ratio or a difference to the passthrough in this very run.
    if at_1000 is not None and ceiling is not None:
        above = (at_1000.cpu_s_per_1000 - ceiling.cpu_s_per_1000) * 1000
        results.ratios["consumer-1000 CPU us/event above the passthrough"] = round(above, 2)
        if results.stages:
            rest = at_1000.cpu_s_per_1000 * 1000 - stages_total(results.stages)
            results.ratios["consumer-1000 CPU us/event outside the in-process stages"] = round(
                rest, 2
            )
    if eos is not None and at_1000 is not None:
        results.ratios["exactly_once/at_least_once"] = round(
            eos.events_per_s / at_1000.events_per_s, 3
        )
    for rate, floor in floor_p99.items():
        if rate in p99:
            results.ratios[f"p99 at {rate}/s above the passthrough ms"] = round(
                p99[rate] - floor, 1
            )
    results.targets.update(
        {
            "consumer-1000 / ceiling >= 0.8": _verdict(
                at_1000.events_per_s / ceiling.events_per_s >= 0.8 if at_1000 and ceiling else None
            ),
            "CPU per event <= the passthrough's + 3 us (batch 1000)": _verdict(
                at_1000.cpu_s_per_1000 - ceiling.cpu_s_per_1000 <= 0.003
                if at_1000 and ceiling
                else None
            ),
            "exactly_once / at_least_once >= 0.7": _verdict(
                eos.events_per_s / at_1000.events_per_s >= 0.7 if eos and at_1000 else None
            ),
            **{
                f"p99 at {rate}/s <= the passthrough's + 10 ms": _verdict(
                    p99[rate] - floor_p99[rate] <= 10 if rate in p99 and rate in floor_p99 else None
                )
                for rate in sorted(p99)
            },
        }
    )


def _plain(name: str) -> bool:
    """A latency run of the consumer as shipped (not the passthrough's, not a shadow's)."""
    return "shadow" not in name and not name.startswith(FLOOR_PREFIX)


def _run_name(name: str) -> str:
    """A latency run's name in the table when it is not the plain ``latency-<rate>``."""
    return "" if not name or name.startswith("latency-") else f" ({name})"


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else "met" if ok else "NOT met"


def table(results: Results) -> str:
    lines = [
        "| run | batch | events | events/s | x ceiling | x naive | CPU s / 1k | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in results.throughput:
        ceiling = results.ratios.get(f"{run.name}/ceiling")
        naive = results.ratios.get(f"{run.name}/naive")
        lines.append(
            f"| {run.name} | {run.batch_size} | {run.events:,} | {run.events_per_s:,.0f} | "
            f"{'' if ceiling is None else f'{ceiling:.2f}'} | "
            f"{'' if naive is None else f'{naive:,.0f}'} | {run.cpu_s_per_1000:.3f} | "
            f"{run.peak_rss_mb:,.0f} |"
        )
    if results.latency:
        lines += [
            "",
            "| offered events/s | events | p50 ms | p95 ms | p99 ms | max ms | BATCH_MAX_WAIT_MS |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        lines += [
            f"| {lat.offered_per_s:,}{_run_name(lat.name)} | {lat.measured:,} | {lat.p50_ms:.1f} | "
            f"{lat.p95_ms:.1f} | "
            f"{lat.p99_ms:.1f} | {lat.max_ms:.1f} | {lat.batch_max_wait_ms} |"
            for lat in results.latency
        ]
    if results.memory is not None:
        m = results.memory
        lines += [
            "",
            f"Memory: RSS {m.rss_at_checkpoint_mb:,.0f} MB after {m.checkpoint:,} events, "
            f"{m.rss_at_end_mb:,.0f} MB after {m.events:,} ({m.growth:+.1%}); "
            f"peak {m.peak_rss_mb:,.0f} MB; {m.events_per_s:,.0f} events/s.",
        ]
    if results.stages:
        by_name = {run.name: run for run in results.throughput}
        lines += [
            "",
            "CPU per event of each stage (in process, `benchmarks.stages`), then the whole",
        ]
        lines += ["processes through the broker (user + system):", ""]
        lines += [stages_table(results.stages)]
        lines.append(f"| in-process stages in all | {stages_total(results.stages):.2f} |")
        for name in ("consumer-1000", "ceiling"):
            if name in by_name:
                cpu = by_name[name].cpu_s_per_1000 * 1000
                lines.append(f"| {name}, whole process through the broker | {cpu:.2f} |")
    if results.adversarial_decode:
        lines += ["", "Adversarial decode (in process, CPU per message):"]
        lines += [adversarial.table(results.adversarial_decode)]
    for key, ratio in results.ratios.items():
        if key.startswith("shadow-"):
            lines += ["", f"With a shadow of the other variant: {key} = {ratio:.2f}"]
        if key.startswith("slow-shadow"):
            lines += ["", f"With a deliberately slow shadow: {key} = {ratio:.3f}"]
        if key.startswith("drift sentinel"):
            lines += ["", f"The drift sentinel (on vs off, batch 1000): {ratio:+.2f} CPU µs/event"]
    lines += ["", "Targets: " + "; ".join(f"{k}: {v}" for k, v in results.targets.items())]
    return "\n".join(lines)


def write_json(results: Results, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stamp = results.started_at.replace(":", "").replace("-", "")
    path = out / f"bench-{stamp}.json"
    path.write_bytes(orjson.dumps(asdict(results), option=orjson.OPT_INDENT_2))
    return path
