"""Start one ingress process (uvicorn; SIGINT/SIGTERM finish requests, flush events, drain NATS)."""
from __future__ import annotations

from types import FrameType

import uvicorn

from services.ingress.app import create_app
from services.ingress.http_limits import bounded_protocol
from shared.service import freeze_startup_heap, install_event_loop, setup_process
from shared.settings import Settings, load_settings


class _Server(uvicorn.Server):
    """A stop by SIGTERM/SIGINT, once graceful, exits 0 like the other services
    (uvicorn would re-raise the signal after its shutdown)."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        getattr(self, "_captured_signals", []).clear()


def main(settings: Settings | None = None) -> None:
    settings = settings or load_settings()
    setup_process(settings, "ingress")
    install_event_loop()
    http = bounded_protocol(settings.ingress.max_header_count, settings.ingress.max_header_bytes)
    config = uvicorn.Config(create_app(settings), host=settings.ingress.host, port=settings.ingress.port, http=http,
                            loop="none", lifespan="on", access_log=False, log_config=None,
                            timeout_graceful_shutdown=int(settings.ingress.graceful_shutdown_s), server_header=False,
                            proxy_headers=False)  # the client address is not read: no per-request header walk
    freeze_startup_heap()
    _Server(config).run()


if __name__ == "__main__":
    main()
