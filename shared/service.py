"""Runs a service's FastAPI app under uvicorn, which turns SIGINT/SIGTERM into a graceful
shutdown: stop accepting, let in-flight handlers finish, stop the broker, exit."""

import asyncio

import uvicorn
from fastapi import FastAPI

from shared.logging import get_logger
from shared.settings import ServiceSettings

log = get_logger(__name__)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # keep our structured logging
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=30,
    )
    server = uvicorn.Server(config)
    asyncio.run(server.serve())
    if not server.started:
        raise SystemExit(1)
