"""The URL of a pass-through call: the provider's native root and the client's checked
path and query (shared/native.py), joined so that it can only ever be under that root."""
from __future__ import annotations

import re

from yarl import URL

from shared.errors import InvalidRequest
from shared.native import native_path, native_query

_VERSION_SUFFIX = re.compile(r"/v\d+(?:alpha\d*|beta\d*)?$")


def without_version(base_url: str) -> str:
    """A base URL without its trailing API version (`.../v1`, `.../v1beta`): the root a
    native client's paths (`/v1/chat/completions`) are relative to."""
    return _VERSION_SUFFIX.sub("", base_url.rstrip("/"))


def native_url(base_url: str, path: str, query: str) -> URL:
    """`base_url` + the checked path (+ `?` the checked query), sent as written (no
    re-encoding); InvalidRequest when the result would not be under `base_url`."""
    base = URL(base_url.rstrip("/"), encoded=True)
    checked, kept = native_path(path), native_query(query)
    text = str(base) + (checked if checked != "/" else "/")
    url = URL(text + (f"?{kept}" if kept else ""), encoded=True)
    under = base.raw_path.rstrip("/")
    if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port) or not (
            url.raw_path == under or url.raw_path.startswith(under + "/")):
        raise InvalidRequest("The pass-through path would leave the provider's base URL.", param="path",
                             code="invalid_path")
    return url
