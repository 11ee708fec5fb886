"""Demo organisations for `xerosync sandbox --demo` (and so for `xerosync dev`).

One of each kind a user meets when connecting: a multi-currency organisation that can hold
HKD, CNY and USD accounts, a single-currency one (CNY and USD accounts fail there), and the two
that xerosync must refuse (Partner Edition, inactive).
"""

from xero_sandbox.organisations import OrganisationIn, create_organisation
from xero_sandbox.state import Sandbox

DEMO_ORGANISATIONS = (
    OrganisationIn(
        name="Acme Trading Ltd",
        base_currency="HKD",
        currencies=["CNY", "USD"],
        timezone="CHINASTANDARDTIME",
        country_code="HK",
        is_demo=True,
    ),
    OrganisationIn(
        name="Harbour Imports (HKD only)",
        base_currency="HKD",
        timezone="CHINASTANDARDTIME",
        country_code="HK",
        is_demo=True,
    ),
    OrganisationIn(
        name="Partner Edition Co",
        edition="PARTNER",
        base_currency="USD",
        currencies=["HKD"],
        timezone="SINGAPORESTANDARDTIME",
        country_code="SG",
        is_demo=True,
    ),
    OrganisationIn(
        name="Dormant Holdings",
        status="INACTIVE",
        base_currency="HKD",
        timezone="CHINASTANDARDTIME",
        country_code="HK",
        is_demo=True,
    ),
)


def seed_demo(sandbox: Sandbox) -> list[str]:
    """Creates the demo organisations; one line per organisation for the console."""
    lines = []
    for spec in DEMO_ORGANISATIONS:
        organisation = create_organisation(sandbox, spec.model_copy())
        lines.append(
            f"{organisation.tenant_id}  {organisation.name} ({organisation.edition}, "
            f"{organisation.status}, {'/'.join(organisation.currencies)})"
        )
    return lines
