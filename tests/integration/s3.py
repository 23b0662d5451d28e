"""Python handle on `deploy/local/s3.sh`: a real S3 API server (S3Proxy) for the tests.

server = LocalS3("pytest-s3", owner_pid=os.getpid())
server.start()                 # endpoint http://127.0.0.1:P, one bucket per test if wanted
store = Store(server.options())
server.stop(keep_data=True)    # the store is down; its objects stay
server.start()                 # same port, same objects
"""

from __future__ import annotations

import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from contract.storage import S3Options

REPO_ROOT = Path(__file__).resolve().parents[2]
S3_SH = REPO_ROOT / "deploy" / "local" / "s3.sh"


@dataclass
class LocalS3:
    name: str
    owner_pid: int | None = None
    settings: dict[str, str] = field(default_factory=dict)

    def _run(self, *args: str) -> str:
        result = subprocess.run(
            [str(S3_SH), *args], capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"s3.sh {' '.join(args)} exited {result.returncode}:\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def start(self, *buckets: str) -> str:
        args = ["start", "--name", self.name]
        if self.owner_pid is not None:
            args += ["--owner-pid", str(self.owner_pid)]
        for bucket in buckets:
            args += ["--bucket", bucket]
        lines = self._run(*args).strip().splitlines()
        self.settings = dict(line.split("=", 1) for line in lines[:-1] if "=" in line)
        self.settings.pop("name", None)
        self.settings["AWS_ENDPOINT_URL_S3"] = lines[-1]
        return lines[-1]

    def stop(self, keep_data: bool = False) -> None:
        self._run(*self.stop_command(keep_data)[1:])

    def stop_command(self, keep_data: bool = False) -> list[str]:
        """The s3.sh command line of ``stop`` (another process may run it)."""
        return [str(S3_SH), "stop", "--name", self.name, *(["--keep-data"] if keep_data else [])]

    @property
    def endpoint(self) -> str:
        return self.settings["AWS_ENDPOINT_URL_S3"]

    def env(self, **overrides: str) -> dict[str, str]:
        """The client environment of this server (for processes), with overrides."""
        return {**self.settings, **overrides}

    def options(self, **overrides: str) -> S3Options:
        return S3Options.from_environ(self.env(**overrides))

    def client(self, **overrides: str) -> Any:
        """A plain boto3 client of this server, for tests that act behind the project's back."""
        options = self.options(**overrides)
        return boto3.client(
            "s3",
            endpoint_url=options.endpoint_url,
            region_name=options.region,
            aws_access_key_id=options.access_key_id,
            aws_secret_access_key=options.secret_access_key,
            config=Config(
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )


def unique_bucket(prefix: str = "it") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"
