"""`xerosync sandbox`: the sandbox as a server."""

import logging

import uvicorn

from xero_sandbox.app import create_app
from xero_sandbox.demo import seed_demo
from xero_sandbox.gateway import DroppedResponse
from xero_sandbox.state import Sandbox


class _QuietDrops(logging.Filter):
    """A dropped answer is an injected fault, not a server error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, DroppedResponse)


def run(
    host: str = "127.0.0.1", port: int = 8090, log_level: str = "info", *, demo: bool = False
) -> None:
    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    sandbox = Sandbox()
    if demo:
        for line in seed_demo(sandbox):
            print(f"demo organisation {line}", flush=True)  # noqa: T201 - console output
    print(f"Xero sandbox on http://{host}:{port} (admin API: /admin/docs)", flush=True)  # noqa: T201
    uvicorn.run(
        create_app(sandbox),
        host=host,
        port=port,
        log_level=log_level.lower(),
        access_log=log_level.lower() == "debug",
        server_header=False,
    )
