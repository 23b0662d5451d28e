"""`python -m contract schema [--out PATH]`: export the event's JSON Schema for producers."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from contract.schema import session_event_json_schema

logger = logging.getLogger(__name__)


def schema_text() -> str:
    """The JSON Schema as the exact text that is committed and printed (sorted, 2-space indent)."""
    return json.dumps(session_event_json_schema(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `python -m contract` and `shopper-contract`."""
    parser = argparse.ArgumentParser(prog="python -m contract", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    schema = commands.add_parser("schema", help="print (or write) the SessionEvent JSON Schema")
    schema.add_argument("--out", type=Path, help="write the schema to this file instead")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    text = schema_text()
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        logger.info("wrote JSON Schema path=%s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
