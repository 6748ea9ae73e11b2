"""Presigned URLs: chunk jobs read the run's objects over plain HTTPS, never with the
store's keys.

The task runner calls :func:`prepare_chunk_call` on the flow host at each submission
(``RunnerOptions.prepare_call``), so each attempt gets URLs valid from its own start,
and the URLs are never task parameters (nothing of them reaches the Prefect API). A
filesystem store gives ``file://`` URLs: its jobs share that filesystem by definition.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from cygno.settings import Settings
from cygno.storage.objectstore import ObjectStore
from cygno.tasks import jobs, resources

#: How long a job may wait in the queue and run before its URLs expire (SigV4 allows
#: at most 7 days); longer than the chunk task's timeout.
URL_LIFETIME_SECONDS = 24 * 3600


@lru_cache(maxsize=4)
def _s3_client(endpoint_url: str | None, region: str, key: str | None, secret: str | None):
    """A botocore client for signing only: signing is local, it sends nothing."""
    import botocore.session
    from botocore.config import Config

    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        region_name=region,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def object_url(store: ObjectStore, key: str, settings: Settings) -> str:
    """A URL a job can GET ``key`` from: presigned for S3, the file URL otherwise."""
    if not store.url.startswith("s3://"):
        return store.uri(key)
    options = settings.storage_options()
    bucket, _, prefix = store.url.removeprefix("s3://").partition("/")
    client = _s3_client(
        options.get("endpoint_url"), settings.s3_region, options.get("key"), options.get("secret")
    )
    return client.generate_presigned_url(
        "get_object",
        Params={"Bucket": bucket, "Key": f"{prefix}/{key}" if prefix else key},
        ExpiresIn=URL_LIFETIME_SECONDS,
    )


def prepare_chunk_call(
    fn: Callable[..., Any], args: tuple, kwargs: dict
) -> tuple[tuple, dict[str, Any]]:
    """Give a ``reconstruct_chunk`` call its :class:`~cygno.tasks.jobs.ChunkAccess`;
    other calls travel unchanged."""
    if fn is not jobs.reconstruct_chunk:
        return args, kwargs
    call = inspect.signature(fn).bind(*args, **kwargs).arguments
    store, settings = resources.store(), resources.settings()
    access = jobs.ChunkAccess(
        raw_url=object_url(store, call["raw"].key, settings),
        pedestal_url=object_url(store, call["pedestal"].key, settings),
    )
    return (), {**call, "access": access}
