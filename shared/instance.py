"""Which process this is, as events name it: `<host>:<pid>` (each replica of a service is one)."""
from __future__ import annotations

import os
import socket
from functools import cache


@cache
def instance_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"
