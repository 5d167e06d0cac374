"""The arguments of `jetgate keys create|list|update|rotate|revoke|delete` (run by
jetgate/keys_cmd.py). Standard library only, for a quick `--help`."""
from __future__ import annotations

import argparse

from jetgate.admin_flags import add_home_flag, add_limit_flags, comma_list


def _key_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--role", choices=["owner", "admin", "member", "viewer", "global"])
    parser.add_argument("--scopes", type=comma_list, help="comma-separated: chat, embeddings, events, admin")
    parser.add_argument("--allowed-ips", type=comma_list, help="comma-separated CIDRs")
    parser.add_argument("--expires-at", help="ISO-8601 time")
    add_limit_flags(parser)


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    keys = sub.add_parser("keys", help="create, list, update, rotate and revoke API keys")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key; prints it once")
    create.add_argument("--name", required=True)
    create.add_argument("--org", dest="org_id", default="default")
    create.add_argument("--team", dest="team_id")
    create.add_argument("--user", dest="user_id")
    create.add_argument("--admin", action="store_true", help="a global admin key (sees every org)")
    _key_flags(create)
    listing = keys_sub.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--org", help="only this org's keys")
    update = keys_sub.add_parser("update", help="change a key's name, role, scopes, limits, expiry, allowlist")
    update.add_argument("key_id")
    update.add_argument("--name")
    _key_flags(update)
    rotate = keys_sub.add_parser("rotate", help="a new secret for the key; prints it once")
    rotate.add_argument("key_id")
    rotate.add_argument("--grace", type=float, help="seconds the old secret stays valid (default: the setting)")
    parsers = [create, listing, update, rotate]
    for name in ("revoke", "delete"):
        revoke = keys_sub.add_parser(name, help="revoke a key; every ingress refuses it within a second")
        revoke.add_argument("key_id")
        parsers.append(revoke)
    add_home_flag(*parsers)
