"""`xerosync dev`: the whole system on this machine, until Ctrl-C."""

import asyncio
import shutil
import signal
import tempfile
import threading
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console

from xerosync.devstack.processes import ProcessFailed, port_open, require_free
from xerosync.devstack.stack import Stack, StackConfig
from xerosync.services import SERVICES

console = Console(stderr=True)


def run_dev(
    *,
    demo: bool,
    data_dir: Path | None,
    demo_interval: float,
    demo_entities: int,
    broker_port: int,
    sandbox_port: int,
) -> int:
    work_dir = data_dir or Path(tempfile.mkdtemp(prefix="xerosync-dev-"))
    stack = Stack(StackConfig.from_environment(work_dir, broker_port=broker_port))
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        console.print(f"\n[bold]{signal.Signals(signum).name}[/]: stopping everything…")
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    exit_code = 1
    try:
        with console.status("starting the broker and PostgreSQL…"):
            stack.start_infrastructure()
        with console.status("creating databases, migrating, creating topics…"):
            asyncio.run(stack.prepare())
        with console.status("starting the Xero sandbox…"):
            require_free("127.0.0.1", sandbox_port, "the Xero sandbox", "use --sandbox-port")
            sandbox = stack.start_tool("sandbox", ["sandbox", f"--port={sandbox_port}", "--demo"])
            sandbox.wait_http_ok(f"http://127.0.0.1:{sandbox_port}/admin/time")
        sandbox_url = f"http://127.0.0.1:{sandbox_port}"
        extra_env = {
            "connector": connector_env(sandbox_url, stack.service_url("connector")),
            "syncer": syncer_env(sandbox_url, stack.service_url("connector")),
        }
        running = [name for name, info in SERVICES.items() if info.runnable]
        for name in running:
            if stop.is_set():
                break
            with console.status(f"starting the {name}…"):
                stack.start_service(name, extra_env=extra_env.get(name))
        if demo and not stop.is_set():
            stack.start_tool(
                "demo-producer",
                [
                    "produce-demo",
                    "--follow",
                    f"--interval={demo_interval}",
                    f"--entities={demo_entities}",
                ],
            )
        _print_summary(stack, running, demo, sandbox_port)
        exit_code = _supervise(stack, stop)
    except ProcessFailed as error:
        console.print(f"[red]error:[/] {error}")
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if data_dir is None and exit_code == 0:
            shutil.rmtree(work_dir, ignore_errors=True)
        elif data_dir is None:
            console.print(f"logs kept in {work_dir}")
        _report_leftovers(stack, sandbox_port)
    return exit_code


def connector_env(sandbox_url: str, connector_url: str) -> dict[str, str]:
    """Register the connector as an app in the sandbox (as one would in Xero's developer
    portal) and point it there, with the development sign-in page on."""
    answer = httpx.post(
        f"{sandbox_url}/admin/apps",
        json={"name": "xerosync (dev)", "redirect_uris": [f"{connector_url}/xero/callback"]},
        timeout=10,
    )
    answer.raise_for_status()
    app = answer.json()
    return {
        "CONNECTOR_PUBLIC_URL": connector_url,
        "CONNECTOR_XERO_LOGIN_URL": sandbox_url,
        "CONNECTOR_XERO_IDENTITY_URL": sandbox_url,
        "CONNECTOR_XERO_API_URL": sandbox_url,
        "CONNECTOR_XERO_CLIENT_ID": app["client_id"],
        "CONNECTOR_XERO_CLIENT_SECRET": app["client_secret"],
        "CONNECTOR_DEMO_SIGN_IN": "true",
    }


def syncer_env(sandbox_url: str, connector_url: str) -> dict[str, str]:
    """Point the syncer at the sandbox's APIs and at the connector's token API (both
    keep their development service token)."""
    return {"SYNCER_XERO_API_URL": sandbox_url, "SYNCER_CONNECTOR_URL": connector_url}


def _report_leftovers(stack: Stack, sandbox_port: int) -> None:
    """Say what is left after stopping, having checked rather than assumed."""
    alive = [name for name, process in stack.started.items() if process.running()]
    ports = [("broker", stack.kafka.bootstrap_servers)] if stack.broker else []
    ports += [
        (name, f"127.0.0.1:{stack.http_port(name)}") for name in stack.started if name in SERVICES
    ]
    if "sandbox" in stack.started:
        ports.append(("sandbox", f"127.0.0.1:{sandbox_port}"))
    busy = [f"{name} {address}" for name, address in ports if _listening(address)]
    if alive or busy:
        console.print(f"[yellow]still running:[/] {', '.join(alive + busy)}")
    else:
        console.print("stopped: every process exited and every port is free.")


def _listening(address: str) -> bool:
    host, _, port = address.rpartition(":")
    return port_open(host, int(port))


def _supervise(stack: Stack, stop: threading.Event) -> int:
    """Wait for Ctrl-C; if any child dies meanwhile, say which and why, and stop."""
    while not stop.wait(0.5):
        for name, process in stack.started.items():
            if not process.running():
                console.print(f"[red]{name} exited (code {process.poll()})[/]:")
                console.print(process.log_tail(), markup=False, highlight=False)
                return 1
    return 0


def _print_summary(stack: Stack, running: list[str], demo: bool, sandbox_port: int) -> None:
    rows: list[tuple[str, str]] = []
    embedded = " (embedded Tansu, memory only)" if stack.broker else ""
    rows.append(("Kafka broker", stack.kafka.bootstrap_servers + embedded))
    if stack.postgres is not None:
        rows.append(("PostgreSQL", f"embedded, Unix socket in {stack.postgres.socket_dir}"))
    for name, info in SERVICES.items():
        database = info.database_name if stack.postgres else "from " + info.database_env
        if name in running:
            url = stack.service_url(name)
            rows.append((name, f"{url}  ({url}/metrics, /healthz, /readyz); db {database}"))
        else:
            rows.append((name, f"not built yet; its database {database} is migrated"))
    sandbox = f"http://127.0.0.1:{sandbox_port}"
    rows.append(
        ("Xero sandbox", f"{sandbox}  (admin API {sandbox}/admin/docs; demo organisations)")
    )
    if "connector" in running:
        rows.insert(
            0,
            ("web UI", f"{stack.service_url('connector')}/dev/sign-in  (sign in as a demo entity)"),
        )
    rows.append(("demo producer", "publishing HKD/CNY/USD transactions" if demo else "off"))
    rows.append(("logs", str(stack.config.work_dir)))
    if stack.postgres is not None:
        socket = stack.postgres.socket_dir
        rows.append(("psql", f"psql 'postgresql://postgres@/xerosync_syncer?host={socket}'"))
    width = max(len(label) for label, _ in rows)
    console.print("[bold]xerosync dev[/] is running:")
    for label, value in rows:
        console.print(f"  {label:<{width}}  {value}", soft_wrap=True, highlight=False)
    console.print("Press [bold]Ctrl-C[/] to stop everything.")
