def run_ingest_bench(
    *, events: int, rounds: int, partitions: int, batch: int, json_output: bool
) -> int:
    raise NotImplementedError
