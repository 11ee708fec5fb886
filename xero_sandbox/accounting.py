"""The Accounting API's rules, as the sandbox keeps them: where each lives, and the
organisation's own.

`xero_sandbox/api/accounting.py` turns HTTP into calls to these modules and answers with the
documents they build (shapes and enums from Xero's accounting OpenAPI document, "the spec"):
- this module: the organisation (`GET /Organisation`), its currencies, and `Refusal`, how
  a rule refuses a whole request;
- `accounts.py`: the chart of accounts;
- `bank_transactions.py`: bank transactions, and the contacts they name;
- `where.py`: the `where` and `order` query language;
- `accounting_json.py`: Xero's dates and how request members are read.

Currencies: an organisation without multi-currency holds only its base currency; adding one
it already holds is a no-op. Their messages are the sandbox's wording.
"""

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from xero_sandbox.accounting_json import canonical, ms_date, read_upper
from xero_sandbox.state import Organisation
from xero_sandbox.where import Fields


class Refusal(Exception):
    """Xero refuses the request: 400 ValidationException, with the refused element if any."""

    def __init__(self, messages: Sequence[str], element: dict[str, Any] | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.element = element


# ----------------------------------------------------------------------------- organisation

_VERSIONS = {"AU": "AU", "NZ": "NZ", "GB": "UK", "US": "US"}
_YEAR_ENDS = {"AU": (30, 6), "NZ": (31, 3)}


def organisation_document(organisation: Organisation) -> dict[str, Any]:
    """`GET /Organisation`'s organisation: Version from the country (AU, NZ, UK, US, else
    GLOBAL), Class PREMIUM when it has multi-currency (the plan that includes it)."""
    day, month = _YEAR_ENDS.get(organisation.country_code, (31, 12))
    return {
        "OrganisationID": organisation.tenant_id,
        "Name": organisation.name,
        "LegalName": organisation.name,
        "PaysTax": True,
        "Version": _VERSIONS.get(organisation.country_code, "GLOBAL"),
        "OrganisationType": "COMPANY",
        "BaseCurrency": organisation.base_currency,
        "CountryCode": organisation.country_code,
        "IsDemoCompany": organisation.is_demo,
        "OrganisationStatus": organisation.status,
        "FinancialYearEndDay": day,
        "FinancialYearEndMonth": month,
        "DefaultSalesTax": "Tax Exclusive",
        "DefaultPurchasesTax": "Tax Exclusive",
        "CreatedDateUTC": ms_date(organisation.created_at),
        "Timezone": organisation.timezone,
        "OrganisationEntityType": "COMPANY",
        "ShortCode": organisation.short_code,
        "Class": "PREMIUM" if organisation.multi_currency else "STANDARD",
        "Edition": organisation.edition,
        "Addresses": [],
        "Phones": [],
        "ExternalLinks": [],
        "PaymentTerms": {},
    }


# ----------------------------------------------------------------------------- currencies

#: ISO 4217 names (from the iso-codes project), Xero's "United States Dollar" for USD.
CURRENCY_NAMES: Mapping[str, str] = MappingProxyType(
    {
        "AED": "UAE Dirham", "AFN": "Afghani", "ALL": "Lek", "AMD": "Armenian Dram",
        "AOA": "Kwanza", "ARS": "Argentine Peso", "AUD": "Australian Dollar",
        "AWG": "Aruban Florin", "AZN": "Azerbaijan Manat", "BAM": "Convertible Mark",
        "BBD": "Barbados Dollar", "BDT": "Taka", "BHD": "Bahraini Dinar", "BIF": "Burundi Franc",
        "BMD": "Bermudian Dollar", "BND": "Brunei Dollar", "BOB": "Boliviano",
        "BRL": "Brazilian Real", "BSD": "Bahamian Dollar", "BTN": "Ngultrum", "BWP": "Pula",
        "BYN": "Belarusian Ruble", "BZD": "Belize Dollar", "CAD": "Canadian Dollar",
        "CDF": "Congolese Franc", "CHF": "Swiss Franc", "CLP": "Chilean Peso",
        "CNY": "Yuan Renminbi", "COP": "Colombian Peso", "CRC": "Costa Rican Colon",
        "CUP": "Cuban Peso", "CVE": "Cabo Verde Escudo", "CZK": "Czech Koruna",
        "DJF": "Djibouti Franc", "DKK": "Danish Krone", "DOP": "Dominican Peso",
        "DZD": "Algerian Dinar", "EGP": "Egyptian Pound", "ERN": "Nakfa", "ETB": "Ethiopian Birr",
        "EUR": "Euro", "FJD": "Fiji Dollar", "FKP": "Falkland Islands Pound",
        "GBP": "Pound Sterling", "GEL": "Lari", "GHS": "Ghana Cedi", "GIP": "Gibraltar Pound",
        "GMD": "Dalasi", "GNF": "Guinean Franc", "GTQ": "Quetzal", "GYD": "Guyana Dollar",
        "HKD": "Hong Kong Dollar", "HNL": "Lempira", "HTG": "Gourde", "HUF": "Forint",
        "IDR": "Rupiah", "ILS": "New Israeli Sheqel", "INR": "Indian Rupee", "IQD": "Iraqi Dinar",
        "IRR": "Iranian Rial", "ISK": "Iceland Krona", "JMD": "Jamaican Dollar",
        "JOD": "Jordanian Dinar", "JPY": "Yen", "KES": "Kenyan Shilling", "KGS": "Som",
        "KHR": "Riel", "KMF": "Comorian Franc", "KPW": "North Korean Won", "KRW": "Won",
        "KWD": "Kuwaiti Dinar", "KYD": "Cayman Islands Dollar", "KZT": "Tenge", "LAK": "Lao Kip",
        "LBP": "Lebanese Pound", "LKR": "Sri Lanka Rupee", "LRD": "Liberian Dollar", "LSL": "Loti",
        "LYD": "Libyan Dinar", "MAD": "Moroccan Dirham", "MDL": "Moldovan Leu",
        "MGA": "Malagasy Ariary", "MKD": "Denar", "MMK": "Kyat", "MNT": "Tugrik", "MOP": "Pataca",
        "MRU": "Ouguiya", "MUR": "Mauritius Rupee", "MVR": "Rufiyaa", "MWK": "Malawi Kwacha",
        "MXN": "Mexican Peso", "MYR": "Malaysian Ringgit", "MZN": "Mozambique Metical",
        "NAD": "Namibia Dollar", "NGN": "Naira", "NIO": "Cordoba Oro", "NOK": "Norwegian Krone",
        "NPR": "Nepalese Rupee", "NZD": "New Zealand Dollar", "OMR": "Rial Omani", "PAB": "Balboa",
        "PEN": "Sol", "PGK": "Kina", "PHP": "Philippine Peso", "PKR": "Pakistan Rupee",
        "PLN": "Zloty", "PYG": "Guarani", "QAR": "Qatari Rial", "RON": "Romanian Leu",
        "RSD": "Serbian Dinar", "RUB": "Russian Ruble", "RWF": "Rwanda Franc",
        "SAR": "Saudi Riyal", "SBD": "Solomon Islands Dollar", "SCR": "Seychelles Rupee",
        "SDG": "Sudanese Pound", "SEK": "Swedish Krona", "SGD": "Singapore Dollar",
        "SHP": "Saint Helena Pound", "SLE": "Leone", "SOS": "Somali Shilling",
        "SRD": "Surinam Dollar", "SSP": "South Sudanese Pound", "STN": "Dobra",
        "SVC": "El Salvador Colon", "SYP": "Syrian Pound", "SZL": "Lilangeni", "THB": "Baht",
        "TJS": "Somoni", "TMT": "Turkmenistan New Manat", "TND": "Tunisian Dinar",
        "TOP": "Pa'anga", "TRY": "Turkish Lira", "TTD": "Trinidad and Tobago Dollar",
        "TWD": "New Taiwan Dollar", "TZS": "Tanzanian Shilling", "UAH": "Hryvnia",
        "UGX": "Uganda Shilling", "USD": "United States Dollar", "UYU": "Peso Uruguayo",
        "UZS": "Uzbekistan Sum", "VED": "Bolívar Soberano", "VES": "Bolívar Soberano",
        "VND": "Dong", "VUV": "Vatu", "WST": "Tala", "XAF": "CFA Franc BEAC",
        "XCD": "East Caribbean Dollar", "XCG": "Caribbean Guilder", "XOF": "CFA Franc BCEAO",
        "XPF": "CFP Franc", "YER": "Yemeni Rial", "ZAR": "Rand", "ZMW": "Zambian Kwacha",
        "ZWG": "Zimbabwe Gold",
    }
)  # fmt: skip

CURRENCY_FIELDS = Fields("Currency", {"Code": "enum", "Description": "string"})


def currency_document(code: str) -> dict[str, str]:
    return {"Code": code, "Description": CURRENCY_NAMES.get(code, code)}


def add_currency(organisation: Organisation, raw: Any) -> str:
    """`PUT /Currencies`: the organisation holds one more currency (a no-op when it holds it)."""
    code = read_upper(canonical(raw, ("Code", "Description")).get("Code"))
    if code is None:
        raise Refusal(['A currency Code must be given, e.g. {"Code": "EUR"}.'])
    if code not in CURRENCY_NAMES:
        raise Refusal([f"'{code}' is not a valid currency code."])
    if code in organisation.currencies:
        return code
    if not organisation.multi_currency:
        raise Refusal(
            [
                f"Organisation is not subscribed to multi-currency, so it cannot add {code}: "
                f"it trades in its base currency ({organisation.base_currency}) only."
            ]
        )
    organisation.currencies.append(code)
    return code
