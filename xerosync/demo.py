"""A stand-in for the bank's internal producers: a few entities with HKD, CNY and USD
accounts, some weeks of history, then (with `follow`) a transaction every few seconds.

Ids derive from the seed and the booking day, so running it twice on one day sends the
same history again, which the syncer ingests once.
"""

import asyncio
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from shared.contracts.bank import AccountOpened, TransactionBooked, TransactionReversed
from shared.contracts.topics import BANK_ACCOUNTS, BANK_TRANSACTIONS, Topics
from shared.settings import KafkaSettings
from xerosync.producer import EventWriter

HONG_KONG = ZoneInfo("Asia/Hong_Kong")
CURRENCIES = ("HKD", "CNY", "USD")
ENTITIES = (
    ("ent-harbour", "Harbour Trading"),
    ("ent-lotus", "Lotus Garments"),
    ("ent-pearl", "Pearl River Exports"),
    ("ent-jade", "Jade Logistics"),
    ("ent-kowloon", "Kowloon Printing"),
)
_OPENING = {"HKD": Decimal("250000.00"), "CNY": Decimal("120000.00"), "USD": Decimal("40000.00")}
_COUNTERPARTIES = (
    ("Kowloon Printing Co", "transfer"),
    ("Shenzhen Components Ltd", "transfer"),
    ("Cathay Pacific", "card"),
    ("HK Electric", "direct_debit"),
    ("Amazon Web Services", "card"),
    ("Star Ferry Café", "card"),
    ("Acme Retail Inc", "transfer"),
)


@dataclass
class DemoAccount:
    entity_id: str
    account_id: str
    currency: str
    name: str
    number: str
    balance: Decimal


def demo_accounts(entities: int, seed: int) -> list[DemoAccount]:
    rng = random.Random(seed)
    return [
        DemoAccount(
            entity_id=entity_id,
            account_id=f"{entity_id}-{currency.lower()}",
            currency=currency,
            name=f"{name} {currency}",
            number=f"{rng.randrange(100, 999)}-{rng.randrange(100000, 999999)}-001",
            balance=_OPENING[currency],
        )
        for entity_id, name in ENTITIES[:entities]
        for currency in CURRENCIES
    ]


def opened(account: DemoAccount) -> AccountOpened:
    return AccountOpened(
        entity_id=account.entity_id,
        account_id=account.account_id,
        currency=account.currency,
        name=account.name,
        account_number=account.number,
    )


def transaction(
    account: DemoAccount, rng: random.Random, booked_at: datetime, transaction_id: str
) -> TransactionBooked:
    counterparty, category = rng.choice(_COUNTERPARTIES)
    credit = rng.random() < 0.4
    amount = Decimal(rng.randrange(500, 2_500_000)) / 100
    account.balance += amount if credit else -amount
    return TransactionBooked(
        transaction_id=transaction_id,
        entity_id=account.entity_id,
        account_id=account.account_id,
        currency=account.currency,
        amount=amount,
        direction="credit" if credit else "debit",
        balance_after=account.balance,
        booked_at=booked_at,
        value_date=booked_at.astimezone(HONG_KONG).date(),
        description=f"{'Payment from' if credit else 'Payment to'} {counterparty}",
        counterparty_name=counterparty,
        reference=f"REF{rng.randrange(10000, 99999)}",
        category=category,
    )


def reversal(
    account: DemoAccount, original: TransactionBooked, booked_at: datetime
) -> TransactionReversed:
    account.balance += original.amount if original.direction == "debit" else -original.amount
    return TransactionReversed(
        transaction_id=f"{original.transaction_id}-rev",
        original_transaction_id=original.transaction_id,
        entity_id=account.entity_id,
        account_id=account.account_id,
        currency=account.currency,
        amount=original.amount,
        direction="credit" if original.direction == "debit" else "debit",
        balance_after=account.balance,
        booked_at=booked_at,
        value_date=booked_at.astimezone(HONG_KONG).date(),
        description=f"Reversal: {original.description}",
    )


def history(
    accounts: list[DemoAccount], *, days: int, per_day: int, seed: int, today: date
) -> Iterator[TransactionBooked | TransactionReversed]:
    """Transactions for the past `days` days, in booking order per account."""
    for account in accounts:
        rng = random.Random(f"{seed}-{account.account_id}")
        for offset in range(days, -1, -1):
            day = today - timedelta(days=offset)
            start = datetime.combine(day, time(9), tzinfo=HONG_KONG)
            for n in range(per_day):
                booked_at = start + timedelta(minutes=n * 45 + rng.randrange(40))
                booked = transaction(
                    account, rng, booked_at, f"demo-{account.account_id}-{day:%Y%m%d}-{n:03d}"
                )
                yield booked
                if booked.direction == "debit" and rng.random() < 0.03:
                    yield reversal(account, booked, booked_at + timedelta(minutes=1))


async def produce_demo(
    kafka: KafkaSettings,
    topics: Topics,
    *,
    entities: int,
    history_days: int,
    per_day: int,
    seed: int,
    follow: bool,
    interval: float,
    report: Callable[[str], None],
) -> None:
    accounts = demo_accounts(entities, seed)
    async with EventWriter(kafka, topics) as writer:
        await writer.write(BANK_ACCOUNTS, [opened(account) for account in accounts])
        today = datetime.now(HONG_KONG).date()
        sent = await writer.write(
            BANK_TRANSACTIONS,
            history(accounts, days=history_days, per_day=per_day, seed=seed, today=today),
        )
        report(
            f"published {len(accounts)} accounts ({entities} entities x {len(CURRENCIES)} "
            f"currencies) and {sent} transactions over {history_days + 1} days"
        )
        if not follow:
            return
        report(f"following: one new transaction every {interval:g}s (Ctrl-C to stop)")
        rng = random.Random()
        while True:
            await asyncio.sleep(interval)
            account = rng.choice(accounts)
            now = datetime.now(UTC)
            event = transaction(
                account, rng, now, f"demo-{account.account_id}-{now:%Y%m%d%H%M%S%f}"
            )
            await writer.write(BANK_TRANSACTIONS, [event])
            report(
                f"{event.booked_at:%H:%M:%S} {event.account_id} {event.direction} "
                f"{event.amount} {event.currency}"
            )
