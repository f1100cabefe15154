"""A file export: each delivery writes one file, CSV or JSON Lines, to a directory under the CDP's var directory
(``var/exports/<directory>``) or to S3-compatible storage (django-storages).

The file's name comes from the delivery's idempotency key, so a retry or a re-send overwrites the same file
instead of adding a second one. Rows carry the change (added, changed, removed, forgotten) and the mapped fields.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import cache
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage

from activation.destinations import network
from activation.destinations.base import (
    TIMEOUT_FIELDS,
    Batch,
    ConfigField,
    DestinationError,
    Result,
    secret,
    timeouts,
    url_error,
)

FIELDS = (
    ConfigField("storage", "Storage", "choice", required=True, default="local",
                choices=(("local", "A directory of this installation"), ("s3", "S3-compatible storage"))),
    ConfigField("format", "Format", "choice", required=True, default="csv",
                choices=(("csv", "CSV"), ("jsonl", "JSON Lines"))),
    ConfigField("directory", "Directory", help="Local: a folder name under var/exports (letters, digits, - _ /)"),
    ConfigField("bucket", "Bucket", help="S3: the bucket"),
    ConfigField("prefix", "Key prefix", help="S3: put before each file name, e.g. exports/crm/"),
    ConfigField("endpoint_url", "Endpoint", "url", help="S3: leave empty for AWS; the address of MinIO and others"),
    ConfigField("region", "Region", default="us-east-1"),
    *TIMEOUT_FIELDS,
    ConfigField("access_key_id", "Access key id", secret=True),
    ConfigField("secret_access_key", "Secret access key", secret=True),
)
SUPPORTS_REMOVE = True
SUPPORTS_FORGET = False  # a file already handed over cannot be taken back; the next files leave the person out

_PATH = re.compile(r"^[A-Za-z0-9_\-]+(/[A-Za-z0-9_\-]+)*/?$")


def config_check(config: dict, secrets: dict) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if config.get("storage") == "s3":
        if not config.get("bucket"):
            errors["bucket"] = ["S3 storage needs a bucket."]
        if config.get("endpoint_url") and (error := url_error(config["endpoint_url"])):
            errors["endpoint_url"] = [error]
        if config.get("prefix") and not _PATH.match(config["prefix"]):
            errors["prefix"] = ["Use letters, digits, - and _ between slashes."]
    else:
        if not config.get("directory"):
            errors["directory"] = ["A local export needs a directory."]
        elif not _PATH.match(config["directory"]):
            errors["directory"] = ["Use letters, digits, - and _ between slashes (no .., no absolute path)."]
    return errors


def exports_root():
    return settings.VAR_DIR / "exports"


def storage_for(destination):
    config = destination.config
    if config.get("storage") == "s3":
        from botocore.config import Config

        connect, read = timeouts(config)
        return _checked_s3_storage()(
            bucket_name=config["bucket"], endpoint_url=config.get("endpoint_url") or None,
            region_name=config.get("region") or None, access_key=secret(destination, "access_key_id") or None,
            secret_key=secret(destination, "secret_access_key") or None, file_overwrite=True,
            default_acl=None, querystring_auth=False,
            client_config=Config(connect_timeout=connect, read_timeout=read, retries={"max_attempts": 1}))
    return FileSystemStorage(location=exports_root() / config["directory"])


@cache
def _checked_s3_storage():
    """django-storages' S3Storage whose boto3 client connects to checked addresses only (network.py)."""
    from storages.backends.s3 import S3Storage

    class CheckedS3Storage(S3Storage):
        @property
        def connection(self):
            resource = super().connection
            network.guard_boto_client(resource.meta.client)
            return resource

    return CheckedS3Storage


def _name(destination, batch: Batch) -> str:
    extension = "jsonl" if destination.config.get("format") == "jsonl" else "csv"
    folder = f"activation-{batch.activation_id}" if batch.activation_id else "destination"
    name = f"{folder}/{batch.created_at:%Y%m%dT%H%M%S}-{batch.action}-{batch.idempotency_key}.{extension}"
    if destination.config.get("storage") == "s3" and destination.config.get("prefix"):
        return str(PurePosixPath(destination.config["prefix"]) / name)
    return name


def _content(destination, batch: Batch) -> bytes:
    if destination.config.get("format") == "jsonl":
        return "".join(json.dumps({"change": item.change, "profile_id": item.profile_id, **item.payload},
                                  sort_keys=True, default=str) + "\n" for item in batch.items).encode()
    # Sorted: the mapping is stored as jsonb on PostgreSQL, which keeps no key order.
    columns = sorted({key for item in batch.items for key in item.payload})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=["change", "profile_id", *columns], extrasaction="ignore")
    writer.writeheader()
    for item in batch.items:
        row = {key: _cell(value) for key, value in item.payload.items()}
        writer.writerow({"change": item.change, "profile_id": item.profile_id, **row})
    return out.getvalue().encode()


def _cell(value):
    """A CSV cell: lists and objects as JSON; text that a spreadsheet would run as a formula is quoted with '."""
    if isinstance(value, dict | list):
        value = json.dumps(value, sort_keys=True, default=str)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _write(destination, batch: Batch) -> Result:
    name = _name(destination, batch)
    storage = storage_for(destination)
    try:
        if storage.exists(name):  # a retry of a write that got through: the same file, already whole
            storage.delete(name)
        saved = storage.save(name, ContentFile(_content(destination, batch)))
    except OSError as error:
        raise DestinationError(f"could not write {name} ({error.strerror or type(error).__name__})") from None
    except Exception as error:  # botocore's errors: connection, timeout, credentials, no such bucket
        raise _s3_error(error) from None
    return Result(message=f"wrote {saved} ({len(batch.items)} rows)")


def _s3_error(error: Exception) -> DestinationError:
    from botocore.exceptions import ClientError, ConnectionError, NoCredentialsError, ReadTimeoutError

    if refused := network.boto_refusal(error):
        return refused
    if isinstance(error, ReadTimeoutError):
        return DestinationError("the storage did not answer in time")
    if isinstance(error, ConnectionError):
        return DestinationError(f"could not connect to the storage ({type(error).__name__})")
    if isinstance(error, NoCredentialsError):
        return DestinationError("no storage credentials are configured", retryable=False)
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "error")
        return DestinationError(f"the storage refused: {code}", status=status,
                                retryable=bool(status and status >= 500))
    raise error


send_batch = remove_batch = _write


def forget(destination, batch: Batch) -> Result:
    raise DestinationError("A file export cannot delete what it has written.", retryable=False)


def test_connection(destination) -> Result:
    storage = storage_for(destination)
    name = _name(destination, Batch(action="test", items=[], idempotency_key="connection-test",
                                    created_at=_epoch()))
    try:
        saved = storage.save(name, ContentFile(b""))
        storage.delete(saved)
    except OSError as error:
        raise DestinationError(f"could not write to the directory ({error.strerror or type(error).__name__})") \
            from None
    except Exception as error:
        raise _s3_error(error) from None
    return Result(message="a test file was written and deleted")


def _epoch():
    from datetime import UTC, datetime

    return datetime(1970, 1, 1, tzinfo=UTC)
