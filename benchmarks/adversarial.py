"""``python -m benchmarks.adversarial``: CPU per message, hostile input vs valid events.

Each kind of message (valid, and the costliest invalid ones a producer can send within
`INPUT_MAX_MESSAGE_BYTES`) goes through `consumer.batch.process_batch` -- decode, validation,
scoring of what is valid, output records -- in batches of one kind, timed with
``time.process_time``; the fastest of ``--repeat`` passes is kept. It shows that rejecting any
message costs about what accepting one of the same size does (issue 17: a 5,000-field event once
took ~27 ms to reject).
``make bench`` runs it too (the `adversarial_decode` rows of its JSON).
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from benchmarks.stages import Message, default_model_uri
from consumer.batch import process_batch
from consumer.publish import rfc3339_now
from contract.samples import EXAMPLE_EVENT
from scoring.gates import load_checked_model
from scoring.scorer import Scorer
from scoring.settings import ModelSettings

logger = logging.getLogger("benchmarks.adversarial")

INPUT_MAX_MESSAGE_BYTES = 65_536  # the consumer's default


@dataclass(frozen=True)
class KindCost:
    kind: str
    bytes: int
    outcome: str  # "scored" or the dead letter's error.type
    microseconds_per_message: float
    times_valid_event: float


def _event() -> dict[str, object]:
    return dict(EXAMPLE_EVENT)


def adversarial_mix() -> list[tuple[str, bytes | None, bytes]]:
    """(kind, key, value): valid events, and hostile messages up to `INPUT_MAX_MESSAGE_BYTES`."""
    good = _event()
    text = json.dumps(good)

    def event(**changes: object) -> bytes:
        return json.dumps({**good, **changes}).encode()

    def raw(field: str, literal: str) -> bytes:
        return text.replace(
            f'"{field}": {json.dumps(good[field])}', f'"{field}": {literal}'
        ).encode()

    return [
        ("valid event", b"s-1", text.encode()),
        (
            "valid event padded with 60 kB of spaces",
            b"s-1",
            raw("PageValues", " " * 60_000 + "5.5"),
        ),
        ("5,000 extra fields (54 kB)", b"k", event(**{f"{i}": 0 for i in range(5000)})),
        ("40 extra fields", b"k", event(**{f"x{i}": 0 for i in range(40)})),
        ("a key repeated 5,000 times", b"k", (text[:-1] + ', "Region": 3' * 5000 + "}").encode()),
        ("array of 10,000 integers for a count", b"k", event(Administrative=list(range(10_000)))),
        ("array of 5,000 empty objects", b"k", event(Region=[{}] * 5000)),
        ("array nested 150 deep", b"k", raw("PageValues", "[" * 150 + "]" * 150)),
        ("array nested 30,000 deep", b"k", raw("PageValues", "[" * 30_000 + "]" * 30_000)),
        ("every field of the wrong type", b"k", json.dumps({k: [] for k in good}).encode()),
        ("60 kB string as month", b"k", event(Month="M" * 60_000)),
        ("60 kB field name", b"k", event(**{"k" * 60_000: 1})),
        ("60,000-digit integer", b"k", raw("Region", "9" * 60_000)),
        ("60 kB of random bytes", b"k", bytes(range(256)) * 234),
        ("truncated event", b"k", text[: len(text) // 2].encode()),
        ("record key of 999,900 bytes", b"K" * 999_900, text.encode()),
        ("value over INPUT_MAX_MESSAGE_BYTES", b"k", b"x" * (INPUT_MAX_MESSAGE_BYTES + 1)),
    ]


def _per_message(scorer: Scorer, messages: Sequence[Message], repeat: int) -> tuple[float, str]:
    best = float("inf")
    scored_at = rfc3339_now()
    result = process_batch(messages, scorer, INPUT_MAX_MESSAGE_BYTES, scored_at)
    for _ in range(repeat):
        started = time.process_time()
        process_batch(messages, scorer, INPUT_MAX_MESSAGE_BYTES, scored_at)
        best = min(best, time.process_time() - started)
    outcome = "scored" if result.records else result.rejections[0].error_type
    return best / len(messages) * 1e6, outcome


def measure(model_uri: str, batch_size: int = 200, repeat: int = 5) -> list[KindCost]:
    """CPU µs per message of each kind, through the whole data plane of a batch."""
    scorer = load_checked_model(ModelSettings.model_construct(model_uri=model_uri).model_path)
    costs: list[tuple[str, int, str, float]] = []
    for kind, key, value in adversarial_mix():
        messages = [Message(value, key or b"", i) for i in range(batch_size)]
        microseconds, outcome = _per_message(scorer, messages, repeat)
        costs.append((kind, len(value) + len(key or b""), outcome, microseconds))
    valid = costs[0][3]
    return [KindCost(k, n, o, round(us, 2), round(us / valid, 1)) for k, n, o, us in costs]


def table(costs: Sequence[KindCost]) -> str:
    lines = [
        "| message | bytes | outcome | CPU µs / message | x valid event |",
        "|---|---:|---|---:|---:|",
    ]
    lines += [
        f"| {c.kind} | {c.bytes:,} | {c.outcome} | {c.microseconds_per_message:,.1f} | "
        f"{c.times_valid_event:,.1f} |"
        for c in costs
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.adversarial", description=__doc__)
    parser.add_argument("--model-uri", help="a best_model_<variant>.joblib (default: newest)")
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    model_uri = args.model_uri or default_model_uri(parser)
    print(f"model: {model_uri}\nbatches of {args.batch_size} messages of one kind")
    print(table(measure(model_uri, args.batch_size, args.repeat)))
    print(f"(fastest of {args.repeat} passes; INPUT_MAX_MESSAGE_BYTES={INPUT_MAX_MESSAGE_BYTES})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
