"""What the chaos run asks of the system, drawn from one seed: the organisations and the
entities that feed them, and the stream of records the bank's producers publish (valid
transactions and reversals, exact duplicates, malformed events), with what Xero must end
up holding.

Everything here is pure: the same seed and sizes give the same topology and the same
bytes, so a failing run can be repeated record for record.
"""

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal
from uuid import UUID
from zoneinfo import ZoneInfo

from shared.contracts.bank import Direction, TransactionBooked, TransactionReversed

CURRENCIES = ("HKD", "USD", "CNY")
ZONE = ZoneInfo("Asia/Hong_Kong")
"""The organisations' time zone (Xero's CHINASTANDARDTIME)."""
SPAN = timedelta(days=2)
"""The stream is booked over the two days before the run starts."""
DUPLICATE_SHARE = 0.05
MALFORMED_SHARE = 0.01
REVERSAL_SHARE = 0.03

RecordKind = Literal["valid", "duplicate", "malformed"]


@dataclass(frozen=True)
class Account:
    account_id: str
    currency: str
    account_number: str


@dataclass(frozen=True)
class Entity:
    index: int
    entity_id: str
    organisation: int
    """Index of the organisation the entity connects to."""
    accounts: tuple[Account, ...]


@dataclass(frozen=True)
class Topology:
    organisations: int
    entities: tuple[Entity, ...]

    def sharing(self) -> int:
        """Organisations fed by more than one entity."""
        counts = [
            sum(1 for e in self.entities if e.organisation == o) for o in range(self.organisations)
        ]
        return sum(1 for c in counts if c > 1)

    def account(self, account_id: str) -> tuple[Entity, Account]:
        for entity in self.entities:
            for account in entity.accounts:
                if account.account_id == account_id:
                    return entity, account
        raise KeyError(account_id)


def topology(run: str, *, organisations: int, entities: int) -> Topology:
    """`entities` spread over `organisations`, unevenly so that some organisations are fed
    by several entities and some by one: the first organisation takes a quarter of them,
    the rest go round the others. Every entity holds an account in each currency."""
    if entities < organisations:
        raise ValueError(f"{entities} entities cannot feed {organisations} organisations")
    first = max(1, entities // 4) if organisations > 1 else entities
    homes = [0] * first + [1 + n % max(1, organisations - 1) for n in range(entities - first)]
    made = []
    for index, home in enumerate(sorted(homes)):
        entity_id = f"ch{run}-e{index:02d}"
        made.append(
            Entity(
                index=index,
                entity_id=entity_id,
                organisation=home,
                accounts=tuple(
                    Account(
                        account_id=f"{entity_id}-{currency.lower()}",
                        currency=currency,
                        account_number=f"0{index:02d}-{run[:6]}-{n}",
                    )
                    for n, currency in enumerate(CURRENCIES)
                ),
            )
        )
    return Topology(organisations, tuple(made))


@dataclass(frozen=True)
class Expected:
    """One valid transaction as Xero must hold it."""

    transaction_id: str
    entity_id: str
    account_id: str
    organisation: int
    amount: Decimal
    direction: str
    """credit (money in) or debit (money out)."""
    balance_after: Decimal

    @property
    def signed(self) -> Decimal:
        return self.amount if self.direction == "credit" else -self.amount


@dataclass(frozen=True)
class Record:
    """One record as published on `bank.transactions.v1`."""

    key: bytes
    value: bytes
    kind: RecordKind
    label: str
    """The transaction id (valid, duplicate) or the malformation's name (malformed)."""


@dataclass
class Stream:
    records: list[Record]
    expected: dict[str, Expected]
    """By transaction id, every valid transaction."""
    ledgers: dict[str, list[str]] = field(default_factory=dict)
    """By account, its transactions in booking order."""
    opening: dict[str, Decimal] = field(default_factory=dict)
    """By account, its balance before its first transaction."""
    start: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When the first transaction was booked."""

    def count(self, kind: RecordKind) -> int:
        return sum(1 for r in self.records if r.kind == kind)

    @property
    def reversals(self) -> int:
        return sum(1 for t in self.expected if t.endswith("-rev"))


@dataclass
class _AccountState:
    account: Account
    entity: Entity
    balance: Decimal
    reversible: list[tuple[str, Decimal, Direction]] = field(default_factory=list)
    """Booked transactions not reversed yet: (id, amount, direction)."""


def stream(run: str, world: Topology, *, transactions: int, seed: int, now: datetime) -> Stream:
    """`transactions` valid transactions (about 3% of them reversals) over every account,
    booked over the `SPAN` before `now`, each account's balance chained; then 5% of them
    published a second time, byte for byte, a little later, and malformed events (1% of
    the valid ones) slipped in among them."""
    rng = random.Random(seed)  # noqa: S311 - a workload, not cryptography
    states = [
        _AccountState(account, entity, Decimal(rng.randrange(1_000, 500_000)))
        for entity in world.entities
        for account in entity.accounts
    ]
    start = now - SPAN
    step = SPAN / transactions
    expected: dict[str, Expected] = {}
    ledgers: dict[str, list[str]] = {s.account.account_id: [] for s in states}
    opening = {s.account.account_id: s.balance for s in states}
    valid: list[Record] = []
    for n in range(transactions):
        state = rng.choice(states)
        booked_at = start + step * n
        if state.reversible and rng.random() < REVERSAL_SHARE:
            event: TransactionBooked | TransactionReversed = _reversal(state, rng, booked_at, n)
        else:
            event = _booked(run, state, rng, booked_at, n)
        state.balance = event.balance_after
        account_id = state.account.account_id
        expected[event.transaction_id] = Expected(
            transaction_id=event.transaction_id,
            entity_id=state.entity.entity_id,
            account_id=account_id,
            organisation=state.entity.organisation,
            amount=event.amount,
            direction=event.direction,
            balance_after=event.balance_after,
        )
        ledgers[account_id].append(event.transaction_id)
        valid.append(
            Record(
                account_id.encode(), event.model_dump_json().encode(), "valid", event.transaction_id
            )
        )
    records = _with_duplicates(valid, rng)
    bad = max(1, round(transactions * MALFORMED_SHARE))
    for malformed in _malformed(run, states, rng, bad, now):
        records.insert(rng.randrange(len(records) + 1), malformed)
    opening = {a: b for a, b in opening.items() if ledgers[a]}
    return Stream(records, expected, {a: ids for a, ids in ledgers.items() if ids}, opening, start)


def _booked(
    run: str, state: _AccountState, rng: random.Random, booked_at: datetime, n: int
) -> TransactionBooked:
    amount = Decimal(rng.randrange(1, 500_000)) / 100
    credit = rng.random() < 0.5
    balance = state.balance + (amount if credit else -amount)
    transaction_id = f"ch{run}-{n:06d}"
    state.reversible.append((transaction_id, amount, "credit" if credit else "debit"))
    counterparty = rng.choice(["Kowloon Printing Co", "Shenzhen Parts Ltd", "Acme Freight", None])
    return TransactionBooked(
        event_id=UUID(int=rng.getrandbits(128), version=4),
        occurred_at=booked_at,
        transaction_id=transaction_id,
        entity_id=state.entity.entity_id,
        account_id=state.account.account_id,
        currency=state.account.currency,
        amount=amount,
        direction="credit" if credit else "debit",
        balance_after=balance,
        booked_at=booked_at,
        value_date=booked_at.astimezone(ZONE).date(),
        description=f"{'Payment from' if credit else 'Payment to'} {counterparty or 'card'} #{n}",
        counterparty_name=counterparty,
        reference=f"INV-{n}" if rng.random() < 0.7 else None,
        category=rng.choice(["card", "transfer", "fee", "fx"]),
    )


def _reversal(
    state: _AccountState, rng: random.Random, booked_at: datetime, n: int
) -> TransactionReversed:
    original, amount, direction = state.reversible.pop(rng.randrange(len(state.reversible)))
    undo: Direction = "debit" if direction == "credit" else "credit"
    balance = state.balance + (amount if undo == "credit" else -amount)
    return TransactionReversed(
        event_id=UUID(int=rng.getrandbits(128), version=4),
        occurred_at=booked_at,
        transaction_id=f"{original}-rev",
        original_transaction_id=original,
        entity_id=state.entity.entity_id,
        account_id=state.account.account_id,
        currency=state.account.currency,
        amount=amount,
        direction=undo,
        balance_after=balance,
        booked_at=booked_at,
        value_date=booked_at.astimezone(ZONE).date(),
        description=None if n % 2 else "Card payment disputed",
    )


def _with_duplicates(valid: list[Record], rng: random.Random) -> list[Record]:
    """The valid records, 5% of them sent again byte for byte 1 to 300 records later (a
    producer's retry, a replayed batch): same key, same partition, after the original."""
    later: dict[int, list[Record]] = {}
    for position, record in enumerate(valid):
        if rng.random() < DUPLICATE_SHARE:
            again = Record(record.key, record.value, "duplicate", record.label)
            later.setdefault(position + rng.randint(1, 300), []).append(again)
    records: list[Record] = []
    for position, record in enumerate(valid):
        records.append(record)
        records.extend(later.pop(position, []))
    for leftovers in later.values():
        records.extend(leftovers)
    return records


MALFORMATIONS = (
    "not_json",
    "amount_negative",
    "amount_as_number",
    "amount_too_precise",
    "missing_balance",
    "unknown_type",
    "booked_at_without_offset",
    "reversal_of_itself",
    "currency_unknown",
)


def _malformed(
    run: str, states: list[_AccountState], rng: random.Random, count: int, now: datetime
) -> Iterator[Record]:
    """`count` events a buggy producer might send, each of a kind the contract refuses and
    each unique (its own transaction id), so it can be found again in the DLQ."""
    for n in range(count):
        state = rng.choice(states)
        kind = MALFORMATIONS[n % len(MALFORMATIONS)]
        when = now - timedelta(minutes=rng.randrange(1, 600))
        body: dict[str, object] = {
            "type": "TransactionBooked",
            "event_id": str(UUID(int=rng.getrandbits(128), version=4)),
            "occurred_at": when.isoformat(),
            "schema_version": 1,
            "transaction_id": f"ch{run}-bad-{n:05d}",
            "entity_id": state.entity.entity_id,
            "account_id": state.account.account_id,
            "currency": state.account.currency,
            "amount": "12.50",
            "direction": "debit",
            "balance_after": "100.00",
            "booked_at": when.isoformat(),
            "value_date": when.astimezone(ZONE).date().isoformat(),
            "description": "Malformed on purpose",
            "category": "card",
        }
        match kind:
            case "amount_negative":
                body["amount"] = "-12.50"
            case "amount_as_number":
                body["amount"] = 12.5
            case "amount_too_precise":
                body["amount"] = "12.505"
            case "missing_balance":
                del body["balance_after"]
            case "unknown_type":
                body["type"] = "TransactionDeleted"
            case "booked_at_without_offset":
                body["booked_at"] = when.replace(tzinfo=None).isoformat()
            case "reversal_of_itself":
                body["type"] = "TransactionReversed"
                body["original_transaction_id"] = body["transaction_id"]
            case "currency_unknown":
                body["currency"] = "XYZ"
        value = json.dumps(body).encode()
        if kind == "not_json":
            value = value[: len(value) // 2]
        yield Record(state.account.account_id.encode(), value, "malformed", f"{kind}#{n}")
