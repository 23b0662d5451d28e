"""``make serve``: the HTTP front door (``python -m serve``) on this machine, on the newest build.

Finds the newest complete build of ``--data`` in ``--registry`` (``make train`` writes there;
the challengers ``make cycle`` trains on collected sessions are passed over), or trains one
with a small budget when there is none (as ``make demo`` does), prints the URL and a ``curl``
example, and replaces itself with ``python -m serve`` (Ctrl-C stops it). MODEL_URI, SERVE_HOST
and SERVE_PORT already in the environment win; SERVE_HOST defaults to 127.0.0.1 here (this
machine only; the image's default is 0.0.0.0).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from demo_builds import find_or_train  # deploy/local/demo_builds.py, beside this script

from contract.pipeline import VARIANTS

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_EVENT = (
    '{"session_id": "s-1", "event_time": "2026-11-26T15:15:00Z", "Administrative": 0, '
    '"Administrative_Duration": 0, "Informational": 0, "Informational_Duration": 0, '
    '"ProductRelated": 12, "ProductRelated_Duration": 420.5, "BounceRates": 0.01, '
    '"ExitRates": 0.03, "PageValues": 18.2, "SpecialDay": 0, "Month": "Nov", '
    '"OperatingSystems": 2, "Browser": 2, "Region": 1, "TrafficType": 2, '
    '"VisitorType": "Returning_Visitor", "Weekend": false}'
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make serve", description=__doc__.split("\n")[0])
    parser.add_argument("--registry", type=Path, default=REPO / "registry")
    parser.add_argument(
        "--data", default=str(REPO / "../shared/data/online_shoppers_intention.csv")
    )
    parser.add_argument("--variant", default="full", choices=VARIANTS)
    parser.add_argument("--n-iter", type=int, default=4, help="search budget when training")
    return parser.parse_args(argv)


def environment(model_uri: str, environ: dict[str, str]) -> dict[str, str]:
    """The server's environment: the build, this machine only, the default port."""
    return {
        "MODEL_URI": model_uri,
        "SERVE_HOST": "127.0.0.1",
        "SERVE_PORT": "8080",
        "LOG_FORMAT": "text",
        **environ,
    }


def url_of(env: dict[str, str]) -> str:
    host = env["SERVE_HOST"]
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{host}:{env['SERVE_PORT']}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_uri = os.environ.get("MODEL_URI")
    if not model_uri:
        artifact = find_or_train(args.registry, args.data, args.n_iter, args.variant)
        model_uri = artifact.resolve().as_uri()
    env = environment(model_uri, dict(os.environ))
    url = url_of(env)
    print(f"==> model {env['MODEL_URI']}")
    print(f"==> serving at {url} (Ctrl-C stops it); for example:")
    print(f"    curl -s {url}/v1/model")
    print(
        f"    curl -s -X POST {url}/v1/score -H 'content-type: application/json' "
        f"-d '{EXAMPLE_EVENT}'",
        flush=True,
    )
    os.execve(sys.executable, [sys.executable, "-m", "serve"], env)
    return 0  # not reached: execve replaces this process


if __name__ == "__main__":
    sys.exit(main())
