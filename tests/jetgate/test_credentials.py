"""The embedded servers' credentials: made once, readable by the owner only, and made of
passwords nats-server reads back as the same string when it substitutes them (compose/)."""
from __future__ import annotations

import stat
from pathlib import Path

from jetgate.credentials import ensure_credentials, new_password, read_credentials
from shared.bus_users import USERS


def test_passwords_begin_with_a_letter_and_hold_letters_and_digits_only() -> None:
    for _ in range(500):  # a digit or a dash first is what made nats-server fail 1 run in ~10
        password = new_password()
        assert len(password) == 32 and password[0].isalpha() and password.isalnum() and password.isascii()


def test_credentials_are_made_once_for_every_user_and_kept_private(tmp_path: Path) -> None:
    made = ensure_credentials(tmp_path)
    assert set(made.nats) == set(USERS)
    assert len({made.nats_password(user) for user in USERS}) == len(USERS)
    again = ensure_credentials(tmp_path)
    assert again.nats_password("router") == made.nats_password("router")
    mode = stat.S_IMODE((tmp_path / "credentials.json").stat().st_mode)
    assert mode == 0o600
    assert read_credentials(tmp_path) == made
