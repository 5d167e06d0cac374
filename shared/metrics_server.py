"""Prometheus `/metrics` for a worker process, on its own port (the ingress serves it on its
HTTP port instead)."""
from __future__ import annotations

import logging
import socket

from prometheus_client import start_http_server

log = logging.getLogger(__name__)


def _free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def start_metrics_server(host: str, port: int, service: str) -> int:
    """Serve this process's metrics; a taken port (a second replica) falls back to a free one.
    Returns the port bound."""
    if port and not _free(host, port):
        log.info("%s: metrics port %d is taken; picking a free one", service, port)
        port = 0
    server, _thread = start_http_server(port, addr=host)
    bound = int(server.server_port)
    log.info("%s: metrics on http://%s:%d/metrics", service, host, bound)
    return bound
