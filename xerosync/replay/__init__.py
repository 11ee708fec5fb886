"""`xerosync replay`: re-deliver a topic range, or a DLQ, to the topic's consumers.

`plan` decides what a replay covers (pure), `kafka` measures, reads, re-publishes and moves
offsets, `run` ties them together for the commands in `cli`. Replays are safe by
construction: every consumer is idempotent (the syncer dedups transactions by id and
postings by tenant and id; connection events are versioned; stale sync requests are
ignored), so re-delivering a record twice changes nothing the first delivery did not.
"""
