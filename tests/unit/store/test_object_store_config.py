"""``CALLVAULT_OBJECT_STORES``: parsing fails closed, and each region gets its own store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from callvault.errors import ConfigError, InvalidInputError
from callvault.store.objects import (
    SETTING,
    LocalObjectStore,
    ObjectStoreConfig,
    ObjectStores,
    S3ObjectStore,
    object_store_for_region,
    parse_object_stores,
)

S3_EU = {"kind": "s3", "bucket": "acme-cv-eu-west-1"}


def test_unset_or_blank_means_every_region_is_local() -> None:
    assert parse_object_stores(None) == {}
    assert parse_object_stores("  ") == {}


def test_a_full_setting_parses() -> None:
    raw = json.dumps(
        {
            "eu-west-1": {
                **S3_EU,
                "endpoint_url": "https://s3.eu-west-1.amazonaws.com",
                "server_side_encryption": "aws:kms",
                "part_size_bytes": 16 * 1024 * 1024,
                "connect_timeout_seconds": 2,
                "max_attempts": 5,
            },
            "eu-west-2": {"kind": "local", "path": "/srv/callvault/eu-west-2"},
        }
    )
    stores = parse_object_stores(raw)
    assert stores["eu-west-1"] == ObjectStoreConfig(
        region="eu-west-1",
        kind="s3",
        bucket="acme-cv-eu-west-1",
        endpoint_url="https://s3.eu-west-1.amazonaws.com",
        server_side_encryption="aws:kms",
        part_size_bytes=16 * 1024 * 1024,
        connect_timeout_seconds=2.0,
        max_attempts=5,
    )
    assert stores["eu-west-2"].path == Path("/srv/callvault/eu-west-2")
    with pytest.raises(TypeError):
        stores["us-east-1"] = stores["eu-west-1"]  # type: ignore[index]


SECRETISH = "Sekret_Value@internal"

BAD = [
    ("{not json", "not valid JSON"),
    ('{"eu-west-1": {}, "eu-west-1": {}}', "appears twice"),
    ("[1, 2]", "must be a JSON object"),
    ('"eu-west-1"', "must be a JSON object"),
    ('{"zz-north-1": {}}', "unknown region 'zz-north-1'"),
    (json.dumps({f"../{SECRETISH}": {}}), "unknown region (malformed)"),
    ('{"eu-west-1": "s3"}', "eu-west-1: must be a JSON object"),
    ('{"eu-west-1": {"kind": "s3"}}', "eu-west-1: an s3 store needs a bucket"),
    ('{"eu-west-1": {"kind": "gcs", "bucket": "abc"}}', "eu-west-1: kind:"),
    ('{"eu-west-1": {"region": "us-east-1"}}', "the region is the entry's name"),
    (json.dumps({"eu-west-1": {**S3_EU, "bucket": SECRETISH}}), "eu-west-1: bucket:"),
    (json.dumps({"eu-west-1": {**S3_EU, "colour": SECRETISH}}), "eu-west-1: colour:"),
    (json.dumps({"eu-west-1": {**S3_EU, SECRETISH: 1}}), "eu-west-1: ?:"),
    (json.dumps({"eu-west-1": {**S3_EU, "part_size_bytes": 1024}}), "part_size_bytes"),
    (json.dumps({"eu-west-1": {**S3_EU, "part_size_bytes": "8388608"}}), "part_size_bytes"),
    (json.dumps({"eu-west-1": {**S3_EU, "max_attempts": True}}), "max_attempts"),
    (json.dumps({"eu-west-1": {**S3_EU, "read_timeout_seconds": 0}}), "read_timeout_seconds"),
    (json.dumps({"eu-west-1": {**S3_EU, "server_side_encryption": "rot13"}}), "server_side"),
    (
        json.dumps({"eu-west-1": {**S3_EU, "endpoint_url": f"https://u:{SECRETISH}@s3.example"}}),
        "endpoint_url",
    ),
    (json.dumps({"eu-west-1": {**S3_EU, "endpoint_url": "file:///etc"}}), "endpoint_url"),
    (json.dumps({"eu-west-1": {**S3_EU, "path": "/srv"}}), "path is for local stores only"),
    (json.dumps({"eu-west-1": {"kind": "local", "bucket": "abc"}}), "for s3 only"),
    (json.dumps({"eu-west-1": {"kind": "local", "path": "relative/dir"}}), "must be absolute"),
    ("{" + " " * 70_000 + "}", "longer than"),
    ("[" * 60_000, "not valid JSON"),
]


@pytest.mark.parametrize(("raw", "why"), BAD)
def test_a_bad_setting_is_a_config_error_naming_it(raw: str, why: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_object_stores(raw)
    assert info.value.field == SETTING
    message = str(info.value)
    assert message.startswith(f"bad setting {SETTING}: ")
    assert why in message
    assert SECRETISH not in message
    assert "\n" not in message


def test_allowed_regions_can_be_narrowed() -> None:
    with pytest.raises(ConfigError, match="unknown region 'eu-west-1'"):
        parse_object_stores(json.dumps({"eu-west-1": S3_EU}), regions={"us-east-1"})


def test_a_config_cannot_be_built_in_an_invalid_state() -> None:
    with pytest.raises(ValidationError):
        ObjectStoreConfig(region="eu-west-1", kind="s3")
    with pytest.raises(ValidationError):
        ObjectStoreConfig(region="../x")


def test_unconfigured_region_is_a_local_directory_under_data_dir(tmp_path: Path) -> None:
    store = object_store_for_region({}, "eu-central-1", data_dir=tmp_path)
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "objects" / "eu-central-1"


def test_configured_local_path_is_used(tmp_path: Path) -> None:
    stores = parse_object_stores(json.dumps({"eu-west-2": {"path": str(tmp_path / "eu2")}}))
    store = object_store_for_region(stores, "eu-west-2", data_dir=tmp_path / "data")
    assert isinstance(store, LocalObjectStore)
    assert store.root == tmp_path / "eu2"


def test_configured_s3_region_gets_an_s3_store_without_a_request(tmp_path: Path) -> None:
    stores = parse_object_stores(
        json.dumps({"eu-west-1": {**S3_EU, "endpoint_url": "http://127.0.0.1:9"}})
    )
    store = object_store_for_region(stores, "eu-west-1", data_dir=tmp_path)
    assert isinstance(store, S3ObjectStore)
    assert (store.bucket, store.region) == ("acme-cv-eu-west-1", "eu-west-1")
    # other regions stay local
    assert isinstance(
        object_store_for_region(stores, "us-east-1", data_dir=tmp_path), LocalObjectStore
    )


@pytest.mark.parametrize("region", ["../x", "eu-west-1/..", "", "EU-WEST-1", "eu_west_1"])
def test_a_malformed_region_is_refused_before_it_names_a_directory(
    tmp_path: Path, region: str
) -> None:
    with pytest.raises(InvalidInputError) as info:
        object_store_for_region({}, region, data_dir=tmp_path)
    assert info.value.field == "region"


def test_a_mapping_entry_for_another_region_is_refused(tmp_path: Path) -> None:
    stores = {"eu-west-2": ObjectStoreConfig(region="eu-west-1", kind="s3", bucket="abc")}
    with pytest.raises(ConfigError):
        object_store_for_region(stores, "eu-west-2", data_dir=tmp_path)


def test_object_stores_builds_each_region_once(tmp_path: Path) -> None:
    stores = ObjectStores({}, data_dir=tmp_path)
    first = stores.for_region("eu-west-2")
    assert stores.for_region("eu-west-2") is first
    assert stores.for_region("us-east-1") is not first
    stores.check()  # nothing configured: nothing to reach
