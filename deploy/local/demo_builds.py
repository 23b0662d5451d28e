"""Where the demo's build comes from: the newest complete build in a registry directory, or one
trained for the demo (locally, or through a local S3 server with `--s3`)."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from contract.manifest import MANIFEST_NAME, artifact_name

REPO = Path(__file__).resolve().parents[2]
S3_SH = REPO / "deploy" / "local" / "s3.sh"
S3_NAME, S3_BUCKET = "demo", "shopper-intent"


def builds_with(registry: Path, variant: str) -> list[Path]:
    """Complete builds (a manifest written) that hold `variant`'s artifact, oldest first."""
    manifests = sorted(registry.glob(f"*/{MANIFEST_NAME}")) if registry.is_dir() else []
    return [m.parent for m in manifests if (m.parent / artifact_name(variant)).is_file()]


def find_or_train(registry: Path, data: str, n_iter: int, variant: str) -> Path:
    """The newest complete build with the variant; train one (small budget) when there is none."""
    builds = builds_with(registry, variant)
    if builds:
        return builds[-1] / artifact_name(variant)
    print(f"==> no build in {registry}: training one (--n-iter {n_iter}); this takes a few minutes")
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
    return builds_with(registry, variant)[-1] / artifact_name(variant)


def through_object_store(args: argparse.Namespace) -> tuple[str, dict[str, str]]:
    """Start the local S3 server, put the dataset in its bucket, and train into the bucket when
    it holds no build yet; return the s3:// MODEL_URI and the client settings to serve it."""
    from contract.storage import S3Options, Store
    from training.registry import list_builds

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
    builds, _ = list_builds(registry, store)
    if not builds:
        print(f"==> no build in {registry}: training one from {data_uri} (--n-iter {args.n_iter})")
        command = [sys.executable, "-m", "training", "--data", data_uri, "--out", registry]
        subprocess.run(
            [*command, "--n-iter", str(args.n_iter)], check=True, env={**os.environ, **env}
        )
        builds, _ = list_builds(registry, store)
    newest = max(builds, key=lambda build: build.build_id)
    return next(a.model_uri for a in newest.artifacts if a.name == name), env
