"""Where builds and data live: local paths, ``file://`` URIs and ``s3://`` URIs, one small API.

Training writes builds and reads data through it; the consumer fetches its artifacts through it;
``python -m training builds`` lists a registry through it. S3 (or any S3-compatible store) is
reached with boto3, AWS's own client: it reads the standard settings, signs requests, and its
errors carry the S3 error codes that tell a missing object from wrong credentials.

Settings come the standard way: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL_S3`` (else ``AWS_ENDPOINT_URL``), ``AWS_REGION``
(else ``AWS_DEFAULT_REGION``) and ``AWS_REQUEST_CHECKSUM_CALCULATION``, each also readable from
a file named by ``<NAME>_FILE`` (Kubernetes Secret volumes). What is not set is left to boto3's
own chain (instance roles, web identity, ``~/.aws``).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import unquote, urlparse

from contract.errors import ContractError

logger = logging.getLogger(__name__)

__all__ = [
    "S3_ENVIRONMENT",
    "Location",
    "S3Location",
    "S3Options",
    "StorageError",
    "Store",
    "is_s3",
    "join",
    "parse_location",
]

StorageProblem = Literal["not_found", "credentials", "unreachable", "exists", "invalid", "failed"]

S3_ENVIRONMENT: Final[tuple[str, ...]] = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_REQUEST_CHECKSUM_CALCULATION",
)
"""The variables :meth:`S3Options.from_environ` reads (each also as ``<NAME>_FILE``), and only
these: it looks each up here, so a name missing from the list fails at once."""

_NOT_FOUND = frozenset({"NoSuchKey", "NoSuchBucket", "404", "NotFound"})
_CREDENTIALS = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403", "ExpiredToken"}
    | {"InvalidToken", "AuthorizationHeaderMalformed"}
)
_EXISTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_DESCRIPTION: Final[dict[str, str]] = {
    "not_found": "the object does not exist",
    "credentials": "the store refused the credentials (check AWS_ACCESS_KEY_ID and "
    "AWS_SECRET_ACCESS_KEY)",
    "unreachable": "the store cannot be reached (check AWS_ENDPOINT_URL_S3 and the network)",
    "exists": "the object exists already and is never overwritten",
    "invalid": "not a usable location",
    "failed": "the store answered with an error",
}


class StorageError(ContractError):
    """A location that cannot be read or written; ``problem`` says which kind of failure."""

    def __init__(self, uri: str, problem: StorageProblem, detail: str) -> None:
        self.uri = uri
        self.problem = problem
        self.detail = detail
        super().__init__(f"{uri}: {_DESCRIPTION[problem]}: {detail}")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


Location = Path | S3Location


def parse_location(uri: str) -> Location:
    """A plain path, a ``file://`` URI or an ``s3://bucket/key`` URI; StorageError otherwise."""
    parsed = urlparse(uri)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise StorageError(uri, "invalid", "an s3:// URI names a bucket: s3://bucket/key")
        return S3Location(parsed.netloc, parsed.path.lstrip("/"))
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise StorageError(uri, "invalid", f"scheme {parsed.scheme!r}: use a path, file:// or s3://")


def is_s3(uri: str) -> bool:
    return urlparse(uri).scheme == "s3"


def join(uri: str, *parts: str) -> str:
    """``uri`` with path parts appended (``s3://b/p`` + ``x`` = ``s3://b/p/x``)."""
    location = parse_location(uri)
    if isinstance(location, Path):
        return str(location.joinpath(*parts))
    key = "/".join([location.key.rstrip("/"), *parts]).lstrip("/")
    return str(S3Location(location.bucket, key))


def _setting(environ: Mapping[str, str], name: str) -> str | None:
    path = environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise StorageError(path, "invalid", f"{name}_FILE cannot be read: {exc}") from exc
    return environ.get(name) or None


@dataclass(frozen=True)
class S3Options:
    """How to reach the store; ``None`` leaves a setting to boto3's default chain."""

    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)
    checksum_calculation: str | None = None
    attempts: int = 3
    """Attempts per request made by boto3 itself (its standard retry mode)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, attempts: int = 3) -> S3Options:
        env = os.environ if environ is None else environ
        value = {name: _setting(env, name) for name in S3_ENVIRONMENT}
        return cls(
            endpoint_url=value["AWS_ENDPOINT_URL_S3"] or value["AWS_ENDPOINT_URL"],
            region=value["AWS_REGION"] or value["AWS_DEFAULT_REGION"],
            access_key_id=value["AWS_ACCESS_KEY_ID"],
            secret_access_key=value["AWS_SECRET_ACCESS_KEY"],
            session_token=value["AWS_SESSION_TOKEN"],
            checksum_calculation=value["AWS_REQUEST_CHECKSUM_CALCULATION"],
            attempts=attempts,
        )


class Store:
    """Read, write and list locations of either kind; one S3 client, made on first use."""

    def __init__(self, options: S3Options | None = None) -> None:
        self.options = options or S3Options()
        self._client: Any = None

    def _s3(self) -> Any:
        if self._client is None:
            import boto3  # only when an s3:// location is used
            from botocore.config import Config

            options = self.options
            config = Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"mode": "standard", "total_max_attempts": options.attempts},
                request_checksum_calculation=options.checksum_calculation or "when_supported",
                response_checksum_validation=options.checksum_calculation or "when_supported",
            )
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=options.endpoint_url,
                region_name=options.region,
                aws_access_key_id=options.access_key_id,
                aws_secret_access_key=options.secret_access_key,
                aws_session_token=options.session_token,
                config=config,
            )
        return self._client

    def read_bytes(self, uri: str) -> bytes:
        location = parse_location(uri)
        if isinstance(location, Path):
            try:
                return location.read_bytes()
            except FileNotFoundError as exc:
                raise StorageError(uri, "not_found", str(exc)) from exc
            except OSError as exc:
                raise StorageError(uri, "failed", str(exc)) from exc
        with _s3_errors(uri):
            body: bytes = (
                self._s3().get_object(Bucket=location.bucket, Key=location.key)["Body"].read()
            )
        return body

    def download(self, uri: str, destination: Path) -> None:
        """Copy the object to ``destination`` (written under a temporary name, then renamed)."""
        location = parse_location(uri)
        destination.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp_name = tempfile.mkstemp(prefix=".part-", dir=destination.parent)
        os.close(handle)
        tmp = Path(tmp_name)
        try:
            if isinstance(location, Path):
                try:
                    shutil.copyfile(location, tmp)
                except FileNotFoundError as exc:
                    raise StorageError(uri, "not_found", str(exc)) from exc
            else:
                with _s3_errors(uri):
                    self._s3().download_file(location.bucket, location.key, str(tmp))
            tmp.replace(destination)
        finally:
            tmp.unlink(missing_ok=True)

    def exists(self, uri: str) -> bool:
        location = parse_location(uri)
        if isinstance(location, Path):
            return location.exists()
        try:
            with _s3_errors(uri):
                self._s3().head_object(Bucket=location.bucket, Key=location.key)
        except StorageError as exc:
            if exc.problem == "not_found":
                return False
            raise
        return True

    def children(self, uri: str) -> list[str]:
        """Names of the directories (common prefixes) directly under ``uri``, sorted."""
        directories, _ = self._entries(uri)
        return directories

    def files(self, uri: str) -> list[str]:
        """Names of the files (objects) directly under ``uri``, sorted; StorageError
        ``not_found`` when it is not a directory (or, in a bucket, holds nothing)."""
        _, files = self._entries(uri)
        if not files and not isinstance(parse_location(uri), Path):
            raise StorageError(uri, "not_found", "no object under this prefix")
        return files

    def _entries(self, uri: str) -> tuple[list[str], list[str]]:
        """(directories, files) directly under ``uri``, each sorted by name."""
        location = parse_location(uri)
        if isinstance(location, Path):
            if not location.is_dir():
                raise StorageError(uri, "not_found", "no such directory")
            entries = list(location.iterdir())
            return (
                sorted(p.name for p in entries if p.is_dir()),
                sorted(p.name for p in entries if p.is_file()),
            )
        prefix = location.key.rstrip("/") + "/" if location.key.strip("/") else ""
        directories: list[str] = []
        files: list[str] = []
        with _s3_errors(uri):
            pages = self._s3().get_paginator("list_objects_v2")
            for page in pages.paginate(Bucket=location.bucket, Prefix=prefix, Delimiter="/"):
                directories += [
                    p["Prefix"][len(prefix) :].rstrip("/") for p in page.get("CommonPrefixes", [])
                ]
                files += [item["Key"][len(prefix) :] for item in page.get("Contents", [])]
        return sorted(directories), sorted(files)

    def is_empty_prefix(self, uri: str) -> bool:
        """True when no object's key starts with ``uri/`` (an S3 'directory' that is not there)."""
        location = parse_location(uri)
        if isinstance(location, Path):
            return not location.exists()
        with _s3_errors(uri):
            answer = self._s3().list_objects_v2(
                Bucket=location.bucket, Prefix=location.key.rstrip("/") + "/", MaxKeys=1
            )
        return int(answer.get("KeyCount", 0)) == 0

    def put_file(self, source: Path, uri: str) -> None:
        """Upload one file to a new S3 object; an existing object is never replaced."""
        location = parse_location(uri)
        if isinstance(location, Path):
            raise StorageError(uri, "invalid", "put_file writes s3:// locations only")
        with _s3_errors(uri), source.open("rb") as body:
            # IfNoneMatch: stores that support conditional writes refuse to replace an object.
            self._s3().put_object(
                Bucket=location.bucket, Key=location.key, Body=body, IfNoneMatch="*"
            )


@contextmanager
def _s3_errors(uri: str) -> Iterator[None]:
    """Turn boto3's exceptions into StorageError with the kind of failure named."""
    try:
        yield
    except StorageError:
        raise
    except Exception as exc:
        problem = _classify(exc)
        if problem is None:
            raise
        raise StorageError(uri, problem[0], problem[1]) from exc


def _classify(exc: Exception) -> tuple[StorageProblem, str] | None:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        ConnectionError,
        NoCredentialsError,
        PartialCredentialsError,
    )

    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        detail = f"{code}: {error.get('Message', '')}"
        if code in _NOT_FOUND:
            return "not_found", detail
        if code in _CREDENTIALS:
            return "credentials", detail
        if code in _EXISTS:
            return "exists", detail
        return "failed", detail
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return "credentials", str(exc)
    if isinstance(exc, ConnectionError):
        return "unreachable", str(exc)
    if isinstance(exc, BotoCoreError):
        return "failed", str(exc)
    return None
