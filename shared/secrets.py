"""Secret references: config names where a credential lives, never the credential."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, SecretStr

_SCHEMES = ("env:", "file:")


def _check_reference(value: str) -> str:
    if not value.startswith(_SCHEMES):
        raise ValueError("secrets are given by reference: 'env:NAME' or 'file:/path', not inline")
    return value


SecretRef = Annotated[str, AfterValidator(_check_reference)]


def resolve_secret(ref: str | None) -> SecretStr | None:
    """The secret a reference points at; None when the reference or its target is empty."""
    if not ref:
        return None
    if ref.startswith("env:"):
        value = os.environ.get(ref[4:], "")
    else:
        path = Path(ref[5:])
        value = path.read_text().strip() if path.exists() else ""
    return SecretStr(value) if value else None
