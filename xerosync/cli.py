"""The `xerosync` command."""

import asyncio
import contextlib
import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import typer
from pydantic import SecretStr, ValidationError
from pydantic_settings import BaseSettings

from shared.settings import CommonSettings
from xerosync.replay.cli import replay_app

app = typer.Typer(
    help="xerosync: keeps business bank accounts and Xero organisations in step.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
bench_app = typer.Typer(help="Benchmarks; each prints its figures (one JSON line with --json).")
app.add_typer(bench_app, name="bench")
app.add_typer(replay_app, name="replay")

S = TypeVar("S", bound=BaseSettings)
DEFAULT_ASYNCAPI = Path("docs/asyncapi.yaml")


def load_settings(cls: type[S]) -> S:
    """Settings from the environment, or a readable list of what is missing or wrong."""
    try:
        return cls()
    except ValidationError as error:
        prefix = str(cls.model_config.get("env_prefix", ""))
        lines = []
        for item in error.errors(include_input=False, include_url=False):
            field = str(item["loc"][0]) if item["loc"] else "?"
            lines.append(f"  {prefix}{field.upper()}: {item['msg']}")
        typer.echo("configuration error:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


@app.command()
def dev(
    demo: Annotated[bool, typer.Option(help="Run the demo producer.")] = True,
    data_dir: Annotated[
        Path | None,
        typer.Option(help="Keep logs and the database here (default: a temporary directory)."),
    ] = None,
    demo_interval: Annotated[float, typer.Option(help="Seconds between demo transactions.")] = 5.0,
    demo_entities: Annotated[int, typer.Option(min=1, max=5)] = 3,
    broker_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the embedded broker.")
    ] = 9092,
    sandbox_port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port of the Xero sandbox.")
    ] = 8090,
) -> None:
    """Run the whole system on this machine until Ctrl-C.

    Starts an embedded Kafka broker and PostgreSQL (unless KAFKA_BOOTSTRAP_SERVERS and
    <SERVICE>_DATABASE_URL point elsewhere), migrates the databases, creates the topics,
    starts the services and a demo producer, and prints what runs where.
    """
    from xerosync.dev import run_dev

    raise typer.Exit(
        run_dev(
            demo=demo,
            data_dir=data_dir,
            demo_interval=demo_interval,
            demo_entities=demo_entities,
            broker_port=broker_port,
            sandbox_port=sandbox_port,
        )
    )


@app.command()
def connector() -> None:
    """Run the connector: the user's web UI, OAuth with Xero, tokens (HTTP on
    CONNECTOR_HTTP_PORT, default 8000)."""
    from services.connector.bootstrap import main as run_connector
    from services.connector.config import ConnectorSettings

    load_settings(ConnectorSettings)  # fail with a readable message before anything starts
    run_connector()


@app.command()
def keygen(
    kid: Annotated[str, typer.Option(help="Key id, e.g. the date: 2026-11.")] = "k1",
) -> None:
    """Print a new CONNECTOR_TOKEN_KEYS entry (kid:key). To rotate, put the new entry first
    and keep the old ones after it until every token was re-sealed."""
    from services.connector.adapters.crypto import Keyring

    typer.echo(Keyring.generate_spec(kid))


@app.command()
def sign_in_url(
    entity: Annotated[str, typer.Option(help="The entity the user acts for.")],
    user: Annotated[str, typer.Option(help="The bank's id of the user.")] = "demo-user",
    hours: Annotated[float, typer.Option(min=0.01, max=24)] = 8.0,
) -> None:
    """Print a sign-in link for the connector's UI, signed with CONNECTOR_SESSION_SECRET, as
    the bank's app would issue it (see README, "Signing users in")."""
    from datetime import timedelta
    from urllib.parse import quote

    from services.connector.config import ConnectorSettings
    from services.connector.entrypoints.auth import mint_user_token

    settings = load_settings(ConnectorSettings)
    token = mint_user_token(
        settings.session_secret.get_secret_value(),
        user_id=user,
        entity_id=entity,
        ttl=timedelta(hours=hours),
    )
    typer.echo(f"{settings.public_url.rstrip('/')}/sign-in?token={quote(token)}")


@app.command()
def scheduler() -> None:
    """Run the scheduler: SyncDue for every active connection every SYNC_INTERVAL, on
    "Sync now" and after connecting (HTTP on SCHEDULER_HTTP_PORT, default 8001). Run
    several replicas for availability: one emits, the others stand by."""
    from services.scheduler.bootstrap import main as run_scheduler
    from services.scheduler.config import SchedulerSettings

    load_settings(SchedulerSettings)  # fail with a readable message before anything starts
    run_scheduler()


@app.command()
def syncer() -> None:
    """Run the syncer (HTTP on SYNCER_HTTP_PORT, default 8002)."""
    from services.syncer.bootstrap import main as run_syncer
    from services.syncer.config import SyncerSettings

    load_settings(SyncerSettings)  # fail with a readable message before anything starts
    run_syncer()


@app.command()
def sandbox(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8090,
    log_level: Annotated[str, typer.Option(help="debug also logs every request.")] = "info",
    demo: Annotated[bool, typer.Option(help="Start with the demo organisations.")] = False,
) -> None:
    """Run the Xero sandbox: Xero's identity, accounting and bank-feeds APIs, plus /admin.

    Point the services' Xero base URLs at it (login, identity and API all live on this one
    server). Its admin API is documented at http://HOST:PORT/admin/docs.
    """
    from xero_sandbox.server import run

    run(host=host, port=port, log_level=log_level, demo=demo)


@app.command()
def migrate(
    service: Annotated[
        list[str] | None, typer.Option(help="Only these services (default: all).")
    ] = None,
    create_databases: Annotated[
        bool, typer.Option(help="Create each database first if it does not exist.")
    ] = True,
    topics: Annotated[bool, typer.Option(help="Also create missing Kafka topics.")] = True,
) -> None:
    """Migrate each service's own database (<SERVICE>_DATABASE_URL) and create the topics."""
    from shared.kafka import ensure_topics, topic_plan
    from shared.migrations import create_database, current, upgrade
    from shared.settings import asyncpg_url, redacted_url
    from xerosync.services import SERVICES

    names = service or list(SERVICES)
    unknown = sorted(set(names) - set(SERVICES))
    if unknown:
        raise typer.BadParameter(
            f"unknown service(s): {', '.join(unknown)}", param_hint="--service"
        )
    missing = [
        SERVICES[n].database_env for n in names if not os.environ.get(SERVICES[n].database_env)
    ]
    if missing:
        typer.echo(f"configuration error: set {', '.join(missing)}", err=True)
        raise typer.Exit(2)

    async def run() -> None:
        for name in names:
            info = SERVICES[name]
            url = SecretStr(asyncpg_url(os.environ[info.database_env]))
            if create_databases and await create_database(url):
                typer.echo(f"{name}: created {redacted_url(url.get_secret_value())}")
            await upgrade(info.migrations, url)
            typer.echo(f"{name}: at revision {await current(url) or '(no migrations yet)'}")
        if topics:
            common = load_settings(CommonSettings)
            created = await ensure_topics(common.kafka, topic_plan(common.topics, common.kafka))
            typer.echo(
                f"topics: {len(created)} created" + (f": {', '.join(created)}" if created else "")
            )

    asyncio.run(run())


@app.command("produce-demo")
def produce_demo(
    entities: Annotated[int, typer.Option(min=1, max=5, help="How many demo entities.")] = 3,
    history_days: Annotated[int, typer.Option(min=0, max=365)] = 14,
    per_day: Annotated[
        int, typer.Option(min=1, max=50, help="Transactions per account per day.")
    ] = 6,
    seed: Annotated[
        int, typer.Option(help="Same seed, same day: same events (ingested once).")
    ] = 7,
    follow: Annotated[bool, typer.Option(help="Keep publishing new transactions.")] = False,
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between followed transactions.")
    ] = 5.0,
) -> None:
    """Publish demo accounts and transactions in HKD, CNY and USD for a few entities."""
    from xerosync.demo import produce_demo as run

    common = load_settings(CommonSettings)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run(
                common.kafka,
                common.topics,
                entities=entities,
                history_days=history_days,
                per_day=per_day,
                seed=seed,
                follow=follow,
                interval=interval,
                report=typer.echo,
            )
        )


@app.command()
def asyncapi(
    output: Annotated[Path, typer.Option(help="Where to write the document.")] = DEFAULT_ASYNCAPI,
    check: Annotated[
        bool, typer.Option(help="Only check that the file is current; exit 1 if not.")
    ] = False,
) -> None:
    """Regenerate the AsyncAPI document of every topic and event from shared/contracts."""
    from importlib.metadata import version

    from shared.contracts.asyncapi import build_document, render_yaml

    text = render_yaml(build_document(version("xerosync")))
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            typer.echo(f"{output} is stale; run `xerosync asyncapi`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is current")
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    typer.echo(f"wrote {output} ({len(text):,} bytes)")


@bench_app.command("ingest")
def bench_ingest(
    events: Annotated[int, typer.Option(min=100, help="Events per contender and round.")] = 50_000,
    rounds: Annotated[int, typer.Option(min=1, max=9, help="Rounds; medians are reported.")] = 3,
    partitions: Annotated[int, typer.Option(min=1, max=64)] = 6,
    batch: Annotated[
        int, typer.Option(min=1, max=10_000, help="Records per batch, all contenders.")
    ] = 500,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
    with_posting: Annotated[
        bool,
        typer.Option(
            "--with-posting",
            help="Also measure the syncer ingesting while it posts backlogs to the Xero "
            "sandbox (syncer+posting).",
        ),
    ] = False,
    posting_tenants: Annotated[
        int, typer.Option(min=1, max=50, help="With --with-posting: organisations posting.")
    ] = 4,
    posting_backlog: Annotated[
        int,
        typer.Option(
            min=1000, help="With --with-posting: each organisation's backlog of transactions."
        ),
    ] = 45_000,
) -> None:
    """Durable ingest rate of the syncer against a hand-written aiokafka+asyncpg reference
    and a consumer that stores nothing, on the same broker, topic shape and PostgreSQL."""
    from xerosync.bench.ingest import PostingLoad, run_ingest_bench

    raise typer.Exit(
        run_ingest_bench(
            events=events,
            rounds=rounds,
            partitions=partitions,
            batch=batch,
            json_output=json_output,
            posting=PostingLoad(posting_tenants, posting_backlog) if with_posting else None,
        )
    )


@bench_app.command("schedule")
def bench_schedule(
    connections: Annotated[
        int, typer.Option(min=100, max=1_000_000, help="Active connections scheduled.")
    ] = 100_000,
    interval: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=3600.0,
            help="Compressed SYNC_INTERVAL in seconds; default: connections / 10,000, at least 1.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """SyncDue emissions per second, scheduler CPU per 1,000 emissions and schedule lag,
    with connections due over a compressed interval and, side by side, all due at once."""
    from xerosync.bench.schedule import run_schedule_bench

    raise typer.Exit(
        run_schedule_bench(connections=connections, interval_s=interval, json_output=json_output)
    )


@bench_app.command("post")
def bench_post(
    sink: Annotated[
        Literal["bankfeeds", "accounting"],
        typer.Option(help="bankfeeds (1,000 lines a statement) or accounting (50 a call)."),
    ] = "bankfeeds",
    single_transactions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Backlog of the single-tenant phase; default per sink (bankfeeds 198,000, "
            "accounting 10,500).",
            show_default=False,
        ),
    ] = None,
    tenants: Annotated[
        int, typer.Option(min=1, max=200, help="Organisations of the many-tenants phase.")
    ] = 20,
    per_tenant_transactions: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Backlog of each organisation in the many-tenants phase; default per sink "
            "(bankfeeds 12,000, accounting 3,600).",
            show_default=False,
        ),
    ] = None,
    single_scale: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=600.0,
            help="Rate-limit scale of the single-tenant phase (window 60/scale s); default "
            "per sink (bankfeeds 5, accounting 10).",
            show_default=False,
        ),
    ] = None,
    many_scale: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=600.0,
            help="Rate-limit scale of the many-tenants phase; default per sink (bankfeeds "
            "1.5, accounting 2).",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Xero calls per rate-limit window against the limit, transactions per call, 429s and
    transactions per second, posting a backlog to the sandbox with its windows scaled: one
    organisation, then many at once."""
    from xerosync.bench.post import run_post_bench

    raise typer.Exit(
        run_post_bench(
            sink=sink,
            single_transactions=single_transactions,
            tenants=tenants,
            per_tenant_transactions=per_tenant_transactions,
            single_scale=single_scale,
            many_scale=many_scale,
            json_output=json_output,
        )
    )


@bench_app.command("soak")
def bench_soak(
    minutes: Annotated[
        float, typer.Option(min=0.25, max=240.0, help="How long the load is held.")
    ] = 10.0,
    rate: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=5_000.0,
            help="Events published per second; default per sink (bankfeeds 200, accounting 40).",
            show_default=False,
        ),
    ] = None,
    tenants: Annotated[
        int, typer.Option(min=1, max=50, help="Organisations, three accounts each.")
    ] = 4,
    sink: Annotated[
        Literal["bankfeeds", "accounting"],
        typer.Option(help="bankfeeds (1,000 lines a statement) or accounting (50 a call)."),
    ] = "bankfeeds",
    sync_interval: Annotated[
        float | None,
        typer.Option(
            min=1.0,
            max=3600.0,
            help="The scheduler's SYNC_INTERVAL in seconds; default 2 s per organisation, at "
            "least 5 s.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """The whole system under a steady ingest and posting load: throughput, the services'
    memory over time (it should stay flat) and the latency from publishing an event to
    Xero accepting it."""
    from xerosync.bench.soak import run_soak_bench

    raise typer.Exit(
        run_soak_bench(
            minutes=minutes,
            rate=rate,
            tenants=tenants,
            sink=sink,
            sync_interval=sync_interval,
            json_output=json_output,
        )
    )


@app.command()
def chaos(
    quick: Annotated[
        bool, typer.Option("--quick", help="A shorter run with every kind of fault (minutes).")
    ] = False,
    seed: Annotated[
        int, typer.Option(help="Seeds the stream, the schedule and Xero's faults.")
    ] = 1,
    transactions: Annotated[
        int | None,
        typer.Option(
            min=50,
            help="Valid transactions (default: full 20,000, quick 4,000).",
            show_default=False,
        ),
    ] = None,
    organisations: Annotated[
        int | None, typer.Option(min=1, max=50, help="Default 10.", show_default=False)
    ] = None,
    entities: Annotated[
        int | None, typer.Option(min=2, max=100, help="Default 20.", show_default=False)
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(
            min=10, help="Seconds of workload (default: full 600, quick 120).", show_default=False
        ),
    ] = None,
    syncer_kills: Annotated[
        int | None,
        typer.Option(
            min=0, help="SIGKILLs of a syncer (default: full 24, quick 6).", show_default=False
        ),
    ] = None,
    sync_interval: Annotated[
        float | None,
        typer.Option(
            min=2, help="SYNC_INTERVAL in seconds (default: full 30, quick 15).", show_default=False
        ),
    ] = None,
    check_interval: Annotated[
        float | None,
        typer.Option(
            min=5,
            help="The connector's connection check, seconds (default: full 120, quick 60).",
            show_default=False,
        ),
    ] = None,
    keep_logs: Annotated[bool, typer.Option(help="Keep the processes' logs after a pass.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="End with one JSON line.")] = False,
) -> None:
    """Run the whole system as processes under faults and check what Xero holds.

    Publishes a seeded stream (transactions, reversals, 5% exact duplicates, 1% malformed)
    while syncers, schedulers and the connector are SIGKILLed, Xero answers 5xx, 429,
    slowly, not at all or drops its answer after the write, the transactions topic is
    replayed, an entity disconnects and reconnects and an account is archived in Xero and
    restored; then checks that every valid transaction is in Xero exactly once, in its own
    organisation and account, in order. Exits 1 on any duplicated, missing or misrouted
    transaction (or broken statement, or malformed event not in the DLQ), 2 if the run
    could not finish.
    """
    from dataclasses import replace

    from xerosync.chaos.run import PROFILES, run_chaos

    config = PROFILES["quick" if quick else "full"]
    overrides: dict[str, Any] = {
        "transactions": transactions,
        "organisations": organisations,
        "entities": entities,
        "duration_s": duration,
        "syncer_kills": syncer_kills,
        "sync_interval_s": sync_interval,
        "check_interval_s": check_interval,
    }
    config = replace(config, seed=seed, **{k: v for k, v in overrides.items() if v is not None})
    if config.entities < config.organisations:
        typer.echo(
            f"--entities ({config.entities}) must be at least --organisations "
            f"({config.organisations}): every organisation is fed by an entity.",
            err=True,
        )
        raise typer.Exit(2)
    raise typer.Exit(run_chaos(config, json_output=json_output, keep=keep_logs))


def main() -> None:
    app(prog_name="xerosync")
    sys.exit(0)
