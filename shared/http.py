"""Operational HTTP routes every service serves: /healthz, /readyz and /metrics."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.errors import XerosyncError

ReadinessCheck = Callable[[], Awaitable[None]]


def ops_router(
    registry: CollectorRegistry, checks: Mapping[str, ReadinessCheck], *, limit_s: float = 3.0
) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="The broker and the database are reachable")
    async def readyz() -> JSONResponse:
        names = list(checks)
        results = await asyncio.gather(*(_run_check(checks[name], limit_s) for name in names))
        report = dict(zip(names, results, strict=True))
        ready = all(result == "ok" for result in report.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": report},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


async def _run_check(check: ReadinessCheck, limit_s: float) -> str:
    try:
        async with asyncio.timeout(limit_s):
            await check()
    except TimeoutError:
        return f"no answer within {limit_s:g}s"
    except XerosyncError as error:
        return str(error)  # our own messages carry no URLs or secrets
    except Exception as error:  # noqa: BLE001 - readiness reports any failure, never raises
        return type(error).__name__
    return "ok"
