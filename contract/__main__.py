"""`python -m contract schema [--out PATH]`: export the event's JSON Schema for producers;
`python -m contract outcome-schema [--out PATH]`: the outcome's, for order systems."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.outcome import session_outcome_json_schema
from contract.schema import session_event_json_schema

logger = logging.getLogger(__name__)


def schema_text(command: str = "schema") -> str:
    """A JSON Schema as the exact text that is committed and printed (sorted, 2-space indent)."""
    schema = session_event_json_schema() if command == "schema" else session_outcome_json_schema()
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m contract` and `shopper-contract`."""
    parser = argparse.ArgumentParser(prog="python -m contract", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="print (or write) the SessionEvent JSON Schema")
    schema.add_argument("--out", type=Path, help="write the schema to this file instead")
    outcome = commands.add_parser(
        "outcome-schema", help="print (or write) the SessionOutcome JSON Schema"
    )
    outcome.add_argument("--out", type=Path, help="write the schema to this file instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    text = schema_text(args.command)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        logger.info("wrote JSON Schema path=%s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
