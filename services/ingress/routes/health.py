"""Liveness, readiness and Prometheus metrics."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingress.state import State
from shared.db.outage import bounded
from shared.errors import KeyStoreUnavailable

router = APIRouter()


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _ping(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


@router.get("/ready", responses={503: {"description": "A part the ingress needs is down; `checks` names it"}})
async def ready(state: State) -> Response:
    """200 when every part answers; else 503 naming the part that is down (each check is
    bounded by its timeouts, so a stalled Postgres cannot hang it)."""
    checks: dict[str, str] = {"nats": "ok" if state.nc.is_connected else "down (disconnected, reconnecting)"}
    try:
        await bounded(_ping(state.engine), state.settings.ingress.key_store_timeout_s)
        checks["postgres"] = "ok"
    except KeyStoreUnavailable as exc:
        checks["postgres"] = f"down ({type(exc.__cause__).__name__})"
    except Exception as exc:
        checks["postgres"] = f"down ({type(exc).__name__})"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if healthy else "not ready", "checks": checks},
                        status_code=200 if healthy else 503)


@router.get("/metrics")
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
