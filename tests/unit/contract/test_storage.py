"""contract.storage on local locations, and how URIs are read (no server needed here; the
s3:// side runs against a real S3 server in tests/integration)."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.storage import (
    S3Location,
    S3Options,
    StorageError,
    Store,
    is_s3,
    join,
    parse_location,
)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/models/b1/best_model_full.joblib", Path("/models/b1/best_model_full.joblib")),
        ("file:///models/b%202/x.joblib", Path("/models/b 2/x.joblib")),
        ("s3://bucket/registry/b1/x.joblib", S3Location("bucket", "registry/b1/x.joblib")),
        ("s3://bucket", S3Location("bucket", "")),
    ],
)
def test_locations(uri: str, expected: object) -> None:
    assert parse_location(uri) == expected


@pytest.mark.parametrize("uri", ["gs://bucket/x", "s3:///no-bucket/x", "http://host/x"])
def test_unusable_locations_are_refused(uri: str) -> None:
    with pytest.raises(StorageError) as refused:
        parse_location(uri)
    assert refused.value.problem == "invalid"
    assert uri in str(refused.value)


def test_join_and_is_s3() -> None:
    assert join("s3://b/registry/", "b1", "m.json") == "s3://b/registry/b1/m.json"
    assert join("s3://b", "b1") == "s3://b/b1"
    assert join("/r", "b1", "m.json") == "/r/b1/m.json"
    assert is_s3("s3://b/k")
    assert not is_s3("/s3/b")


def test_local_store_reads_downloads_and_lists(tmp_path: Path) -> None:
    (tmp_path / "b1").mkdir()
    (tmp_path / "b2").mkdir()
    (tmp_path / "b1" / "a.txt").write_text("payload")
    (tmp_path / "b1" / "b.txt").write_text("")
    store = Store()
    assert store.children(str(tmp_path)) == ["b1", "b2"]
    assert store.files(str(tmp_path / "b1")) == ["a.txt", "b.txt"]
    with pytest.raises(StorageError, match="no such directory"):
        store.files(str(tmp_path / "b1" / "a.txt"))
    assert store.read_bytes(str(tmp_path / "b1" / "a.txt")) == b"payload"
    store.download((tmp_path / "b1" / "a.txt").as_uri(), tmp_path / "copy" / "a.txt")
    assert (tmp_path / "copy" / "a.txt").read_text() == "payload"
    assert not [p for p in (tmp_path / "copy").iterdir() if p.name.startswith(".part-")]
    with pytest.raises(StorageError) as missing:
        store.download(str(tmp_path / "absent"), tmp_path / "copy" / "absent")
    assert missing.value.problem == "not_found"
    assert not (tmp_path / "copy" / "absent").exists()


def test_options_from_files_and_fallback_names(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("AKID\n")
    options = S3Options.from_environ(
        {
            "AWS_ACCESS_KEY_ID_FILE": str(tmp_path / "key"),
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_ENDPOINT_URL": "http://general:9000",
            "AWS_REGION": "eu-central-1",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    assert options.access_key_id == "AKID"
    assert options.endpoint_url == "http://general:9000"
    assert options.region == "eu-central-1"
    assert "secret" not in repr(options)
    with pytest.raises(StorageError):
        S3Options.from_environ({"AWS_SECRET_ACCESS_KEY_FILE": str(tmp_path / "absent")})
