"""The arguments of `jetgate orgs|teams|users create|list|update|delete` (run by
jetgate/tenants_cmd.py). Standard library only, for a quick `--help`."""
from __future__ import annotations

import argparse

from jetgate.admin_flags import add_home_flag, add_limit_flags

# command: the kind of object (shared/tenancy.py `LevelKind`'s values)
NOUNS = {"orgs": "org", "teams": "team", "users": "user"}


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for command, noun in NOUNS.items():
        parser = sub.add_parser(command, help=f"create, list, update and delete {command}")
        actions = parser.add_subparsers(dest="tenant_command", required=True)
        create = actions.add_parser("create", help=f"create a {noun}; prints its id")
        create.add_argument("--id", required=noun == "org", help="a slug: [a-z0-9][a-z0-9-]{0,62}")
        create.add_argument("--name", required=True)
        listing = actions.add_parser("list", help=f"list {command}")
        update = actions.add_parser("update", help=f"change a {noun}'s name or limits")
        update.add_argument("object_id")
        update.add_argument("--name")
        delete = actions.add_parser("delete", help=f"delete a {noun} and revoke the keys beneath it")
        delete.add_argument("object_id")
        for each in (create, update):
            add_limit_flags(each)
        if noun != "org":
            create.add_argument("--org", dest="org_id", default="default")
            listing.add_argument("--org", help="only this org's")
        if noun == "user":
            for each in (create, update):
                each.add_argument("--team", dest="team_id")
                each.add_argument("--email")
                each.add_argument("--role", choices=["owner", "admin", "member", "viewer"])
            listing.add_argument("--team", help="only this team's")
        add_home_flag(create, listing, update, delete)
