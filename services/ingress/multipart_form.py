"""Reading a `multipart/form-data` upload (audio transcriptions) to validate it: its text
fields and the names of its files. The body itself is forwarded as sent; this only reads
it (already size-limited by the ingress), with a limit on the number of parts."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.errors import InvalidRequest

MAX_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024
_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^\s;]+))', re.IGNORECASE)
_PARAM = re.compile(r';\s*([a-zA-Z*]+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Form:
    fields: dict[str, list[str]] = field(default_factory=dict)  # text fields, in order (`include[]` repeats)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)  # field -> (filename, size)

    def first(self) -> dict[str, str | list[str]]:
        """The fields as a model reads them: one value, or the list of a repeated `name[]`."""
        return {name: values if name.endswith("[]") else values[0] for name, values in self.fields.items()}


def _refuse(message: str) -> InvalidRequest:
    return InvalidRequest(message, code="invalid_multipart")


def boundary(content_type: str) -> bytes:
    found = _BOUNDARY.search(content_type)
    if not content_type.lower().startswith("multipart/form-data") or found is None:
        raise InvalidRequest("The body must be multipart/form-data (with a boundary), as OpenAI's audio endpoints take.",
                             code="invalid_content_type")
    return (found.group(1) or found.group(2)).encode("latin-1")


def read_form(raw: bytes, content_type: str) -> Form:
    delimiter = b"--" + boundary(content_type)
    pieces = raw.split(delimiter)
    if len(pieces) < 3 or not pieces[-1].startswith(b"--"):
        raise _refuse("The multipart body is not complete (no closing boundary).")
    if len(pieces) - 2 > MAX_PARTS:
        raise _refuse(f"The multipart body has more than {MAX_PARTS} parts.")
    form = Form()
    for piece in pieces[1:-1]:
        head, sep, content = piece.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        if not sep:
            raise _refuse("A part of the multipart body has no headers.")
        content = content.removesuffix(b"\r\n")
        disposition = next((line for line in head.decode("utf-8", "replace").split("\r\n")
                            if line.lower().startswith("content-disposition:")), None)
        params = dict(_PARAM.findall(disposition or ""))
        name = params.get("name")
        if not disposition or "form-data" not in disposition.lower() or not name:
            raise _refuse("A part of the multipart body is not a named form-data field.")
        if "filename" in params:
            form.files[name] = (params["filename"], len(content))
        else:
            if len(content) > MAX_FIELD_BYTES:
                raise _refuse(f"The form field `{name}` is longer than {MAX_FIELD_BYTES} bytes.")
            form.fields.setdefault(name, []).append(content.decode("utf-8", "replace"))
    return form
