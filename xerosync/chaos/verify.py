"""The chaos run's verdict, from what the Xero sandbox holds and what the DLQ holds.

- Every valid transaction must be in Xero exactly once, in its entity's organisation, on
  the bank feed of its own account, with its amount and its sign (credit/debit).
- Each account's statements, in the order Xero received them, must be contiguous: each
  starts at the balance the previous one ended at (the first at the account's opening
  balance), their lines are the account's transactions in booking order, and the last
  ends at the account's final balance.
- Nothing else of ours may be there (a malformed event, a line of another entity).
- Every malformed event must be in the DLQ, byte for byte, with a reason.

Pure: the run gathers the holdings and the DLQ's records, this judges them.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from xerosync.chaos.workload import Stream

EXAMPLES = 5
"""Ids kept per kind of problem, for the report."""


@dataclass(frozen=True)
class DlqRecord:
    value: bytes
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Line:
    """One statement line as Xero holds it, with where it is."""

    transaction_id: str
    tenant_id: str
    account_token: str | None
    """Our account id, as the feed connection it arrived through names it."""
    amount: Decimal
    indicator: str


@dataclass
class Verdict:
    expected: int
    delivered: int = 0
    """Valid transactions held exactly once, in the right organisation and account, with
    the right amount and sign."""
    duplicated: int = 0
    """Extra copies Xero holds of our transactions (a transaction held 3 times counts 2)."""
    missing: int = 0
    misrouted: int = 0
    """Our transactions held in another organisation or on another account."""
    mismatched: int = 0
    """Held in the right place but with another amount or sign."""
    unexpected: int = 0
    """Lines of this run that are no valid transaction of it (a malformed event posted)."""
    broken_accounts: int = 0
    """Accounts whose statements are not contiguous with consistent balances."""
    resent: int = 0
    """Lines Xero's own duplicate detection dropped: the syncer sent them twice. Xero kept
    them once, so they are not duplicated, but exactly-once should not need Xero's help."""
    malformed: int = 0
    dlq: int = 0
    """Malformed events found in the DLQ with a reason."""
    dlq_records: int = 0
    """Every record in the DLQ (a replayed malformed event is refused again)."""
    statements: int = 0
    examples: dict[str, list[str]] = field(default_factory=dict)
    missing_ids: list[str] = field(default_factory=list)

    @property
    def dlq_missing(self) -> int:
        return self.malformed - self.dlq

    @property
    def ok(self) -> bool:
        return not (
            self.duplicated
            or self.missing
            or self.misrouted
            or self.mismatched
            or self.unexpected
            or self.broken_accounts
            or self.dlq_missing
        )

    def note(self, kind: str, what: str) -> None:
        kept = self.examples.setdefault(kind, [])
        if len(kept) < EXAMPLES:
            kept.append(what)


def _signed(amount: Any, indicator: str) -> Decimal:
    value = Decimal(str(amount))
    return value if indicator.upper() == "CREDIT" else -value


def statement_lines(
    tenant_id: str, holdings: Mapping[str, Any], prefix: str
) -> tuple[list[Line], list[tuple[str, dict[str, Any]]], int]:
    """The organisation's delivered lines of this run (transaction ids starting with
    `prefix`), its delivered statements with the account token of the feed each came
    through, and how many lines Xero dropped as duplicates."""
    tokens = {f["id"]: f["account_token"] for f in holdings.get("feed_connections", [])}
    lines: list[Line] = []
    statements = []
    resent = 0
    for statement in holdings.get("statements", []):
        ours = [
            line
            for line in statement["lines"]
            if str(line.get("transaction_id") or "").startswith(prefix)
        ]
        if statement["status"] != "DELIVERED":
            resent += len(ours)
            continue
        resent += sum(1 for d in statement.get("duplicate_lines", []) if str(d).startswith(prefix))
        if not ours:
            continue
        token = tokens.get(statement["feed_connection_id"])
        statements.append((token or "?", statement))
        lines.extend(
            Line(
                transaction_id=line["transaction_id"],
                tenant_id=tenant_id,
                account_token=token,
                amount=Decimal(str(line["amount"])),
                indicator=line["credit_debit_indicator"],
            )
            for line in ours
        )
    return lines, statements, resent


def verify(
    stream: Stream,
    tenants: Sequence[str],
    holdings: Mapping[str, Mapping[str, Any]],
    dlq: Iterable[DlqRecord],
    *,
    prefix: str,
) -> Verdict:
    """Judge the run: `tenants[i]` is organisation i's tenant id, `holdings` each
    organisation's admin view, `dlq` the transactions topic's DLQ, `prefix` what every
    transaction id of this run starts with."""
    verdict = Verdict(expected=len(stream.expected))
    lines: list[Line] = []
    by_account: dict[str, list[dict[str, Any]]] = {}
    for tenant_id in tenants:
        found, statements, resent = statement_lines(tenant_id, holdings[tenant_id], prefix)
        lines.extend(found)
        verdict.resent += resent
        verdict.statements += len(statements)
        for token, statement in statements:
            by_account.setdefault(token, []).append(statement)
    _judge_lines(verdict, stream, tenants, lines)
    _judge_statements(verdict, stream, by_account, prefix)
    _judge_dlq(verdict, stream, dlq)
    return verdict


def _judge_lines(
    verdict: Verdict, stream: Stream, tenants: Sequence[str], lines: list[Line]
) -> None:
    held = Counter(line.transaction_id for line in lines)
    for transaction_id, copies in held.items():
        if transaction_id not in stream.expected:
            verdict.unexpected += copies
            verdict.note("unexpected", transaction_id)
        elif copies > 1:
            verdict.duplicated += copies - 1
            verdict.note("duplicated", f"{transaction_id} held {copies} times")
    right: Counter[str] = Counter()
    for line in lines:
        want = stream.expected.get(line.transaction_id)
        if want is None:
            continue
        if line.tenant_id != tenants[want.organisation] or line.account_token != want.account_id:
            verdict.misrouted += 1
            verdict.note(
                "misrouted",
                f"{line.transaction_id} of {want.account_id} on {line.account_token} "
                f"in {line.tenant_id}",
            )
        elif _signed(line.amount, line.indicator) != want.signed:
            verdict.mismatched += 1
            verdict.note(
                "mismatched",
                f"{line.transaction_id}: {line.indicator} {line.amount}, "
                f"want {want.direction} {want.amount}",
            )
        else:
            right[line.transaction_id] += 1
    verdict.delivered = sum(1 for copies in right.values() if copies == 1)
    for transaction_id in stream.expected:
        if transaction_id not in held:
            verdict.missing += 1
            verdict.missing_ids.append(transaction_id)
            verdict.note("missing", transaction_id)


def _judge_statements(
    verdict: Verdict, stream: Stream, by_account: Mapping[str, list[dict[str, Any]]], prefix: str
) -> None:
    for account_id, ledger in stream.ledgers.items():
        statements = by_account.get(account_id, [])
        problem = _contiguity(stream, account_id, ledger, statements, prefix)
        if problem:
            verdict.broken_accounts += 1
            verdict.note("broken_accounts", f"{account_id}: {problem}")


def _contiguity(
    stream: Stream,
    account_id: str,
    ledger: list[str],
    statements: list[dict[str, Any]],
    prefix: str,
) -> str | None:
    """What is wrong with the account's statements, or None."""
    balance = stream.opening[account_id]
    posted: list[str] = []
    for n, statement in enumerate(statements):
        start = _signed(statement["start_balance"], statement["start_indicator"])
        if start != balance:
            return f"statement {n} starts at {start}, the balance before it was {balance}"
        for line in statement["lines"]:
            balance += _signed(line["amount"], line["credit_debit_indicator"])
            if str(line.get("transaction_id") or "").startswith(prefix):
                posted.append(line["transaction_id"])
        end = _signed(statement["end_balance"], statement["end_indicator"])
        if end != balance:
            return f"statement {n} ends at {end}, its lines end at {balance}"
        if n and statement["start_date"] < statements[n - 1]["end_date"]:
            return f"statement {n} starts {statement['start_date']}, before the previous ended"
    if posted != ledger:
        return f"{len(posted)} lines in Xero are not its {len(ledger)} transactions in order"
    final = stream.expected[ledger[-1]].balance_after
    if balance != final:
        return f"ends at {balance}, the account's balance is {final}"
    return None


def _judge_dlq(verdict: Verdict, stream: Stream, dlq: Iterable[DlqRecord]) -> None:
    malformed = {r.value: r.label for r in stream.records if r.kind == "malformed"}
    verdict.malformed = len(malformed)
    found: set[bytes] = set()
    for record in dlq:
        verdict.dlq_records += 1
        if record.value in malformed and record.headers.get("x-dlq-error", "").strip():
            found.add(record.value)
    verdict.dlq = len(found)
    for value, label in malformed.items():
        if value not in found:
            verdict.note("dlq_missing", label)
