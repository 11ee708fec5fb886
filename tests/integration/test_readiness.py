"""Readiness tells ops which dependency is missing; health stays about the process."""

from tests.conftest import Env, admin_connection
from tests.integration.conftest import RunSyncer


async def test_readyz_reports_a_database_outage_by_name(env: Env, run_syncer: RunSyncer) -> None:
    async with run_syncer() as syncer:
        ready = await syncer.http.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"broker": "ok", "database": "ok"}}

        # Take the database away under the running service.
        admin = await admin_connection(env.infrastructure)
        database = env.databases["syncer"]
        try:
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                database,
            )
            down = await syncer.http.get("/readyz")
            alive = await syncer.http.get("/healthz")
        finally:
            await admin.execute(f'ALTER DATABASE "{database}" WITH ALLOW_CONNECTIONS true')
            await admin.close()

    assert down.status_code == 503
    body = down.json()
    assert body["status"] == "not ready"
    assert body["checks"]["broker"] == "ok"
    assert body["checks"]["database"].startswith("database unavailable")
    assert "postgres" not in body["checks"]["database"]  # no URL, user or host leaks out
    assert alive.status_code == 200
