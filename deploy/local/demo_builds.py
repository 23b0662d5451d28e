"""Where the demo's build comes from: the newest complete build in a registry directory trained
on the demo's dataset, or one trained for the demo (locally, or through a local S3 server with
`--s3`). Builds trained on other data (the challengers `make cycle` trains on collected
sessions) are passed over: the demos' champion is a build of the dataset."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from contract.manifest import MANIFEST_NAME, artifact_name, sha256_file
from training.registry import ListedBuild, builds_of_data, trained_on

if TYPE_CHECKING:
    from contract.storage import Store

REPO = Path(__file__).resolve().parents[2]
S3_SH = REPO / "deploy" / "local" / "s3.sh"
S3_NAME, S3_BUCKET = "demo", "shopper-intent"


def find_or_train(registry: Path, data: str, n_iter: int, variant: str) -> Path:
    """The newest complete build of `data` with the variant; train one (small budget) when there
    is none."""
    digest = sha256_file(Path(data))
    builds = builds_of_data(registry, variant, digest)
    if builds:
        return builds[-1] / artifact_name(variant)
    print(
        f"==> no build of {Path(data).name} in {registry}: training one (--n-iter {n_iter}); "
        "this takes a few minutes"
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "training",
            "--data",
            data,
            "--out",
            str(registry),
            "--n-iter",
            str(n_iter),
        ],
        check=True,
    )
    return builds_of_data(registry, variant, digest)[-1] / artifact_name(variant)


def through_object_store(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """Start the local S3 server, put the dataset in its bucket, and train into the bucket when
    it holds no build of the dataset yet; return the s3:// MODEL_URI and the client settings to
    serve it."""
    from contract.storage import S3Options, Store

    print("==> starting a local S3 server (first run resolves S3Proxy from Maven)")
    result = subprocess.run(
        [str(S3_SH), "start", "--name", S3_NAME, "--bucket", S3_BUCKET],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = result.stdout.strip().splitlines()
    env = dict(line.split("=", 1) for line in lines[:-1] if line.startswith("AWS_"))
    env["AWS_ENDPOINT_URL_S3"] = lines[-1]
    print(f"    S3 endpoint {lines[-1]}, bucket {S3_BUCKET}")
    store = Store(S3Options.from_environ(env))
    data_uri = f"s3://{S3_BUCKET}/data/{Path(args.data).name}"
    if not store.exists(data_uri):
        store.put_file(Path(args.data), data_uri)
    registry = f"s3://{S3_BUCKET}/registry"
    name = f"best_model_{args.variant}.joblib"
    digest = sha256_file(Path(args.data))
    builds = _listed_builds_of(registry, store, digest)
    if not builds:
        print(f"==> no build of {data_uri} in {registry}: training one (--n-iter {args.n_iter})")
        command = [sys.executable, "-m", "training", "--data", data_uri, "--out", registry]
        subprocess.run(
            [*command, "--n-iter", str(args.n_iter)], check=True, env={**os.environ, **env}
        )
        builds = _listed_builds_of(registry, store, digest)
    newest = max(builds, key=lambda build: build.build_id)
    return next(a.model_uri for a in newest.artifacts if a.name == name), env


def _listed_builds_of(registry: str, store: Store, data_sha256: str) -> list[ListedBuild]:
    """The complete builds of an ``s3://`` registry trained on that data."""
    from contract.storage import join
    from training.registry import list_builds

    builds, _ = list_builds(registry, store)
    return [
        build
        for build in builds
        if trained_on(store.read_bytes(join(registry, build.build_id, MANIFEST_NAME)), data_sha256)
    ]
