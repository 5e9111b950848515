"""Money is integer minor units of a lowercase ISO 4217 currency; never a float."""

from __future__ import annotations

# Stripe's own ceiling for a single amount in most currencies.
MAX_AMOUNT = 99_999_999

# What an invoice or balance is in when nothing says otherwise.
DEFAULT_CURRENCY = "usd"

# The currencies Stripe settles in; lowercase, as Stripe renders them.
CURRENCIES = frozenset(
    [
        "usd",
        "aed",
        "afn",
        "all",
        "amd",
        "ang",
        "aoa",
        "ars",
        "aud",
        "awg",
        "azn",
        "bam",
        "bbd",
        "bdt",
        "bgn",
        "bhd",
        "bif",
        "bmd",
        "bnd",
        "bob",
        "brl",
        "bsd",
        "bwp",
        "byn",
        "bzd",
        "cad",
        "cdf",
        "chf",
        "clp",
        "cny",
        "cop",
        "crc",
        "cve",
        "czk",
        "djf",
        "dkk",
        "dop",
        "dzd",
        "egp",
        "etb",
        "eur",
        "fjd",
        "fkp",
        "gbp",
        "gel",
        "gip",
        "gmd",
        "gnf",
        "gtq",
        "gyd",
        "hkd",
        "hnl",
        "htg",
        "huf",
        "idr",
        "ils",
        "inr",
        "isk",
        "jmd",
        "jod",
        "jpy",
        "kes",
        "kgs",
        "khr",
        "kmf",
        "krw",
        "kwd",
        "kyd",
        "kzt",
        "lak",
        "lbp",
        "lkr",
        "lrd",
        "lsl",
        "mad",
        "mdl",
        "mga",
        "mkd",
        "mmk",
        "mnt",
        "mop",
        "mur",
        "mvr",
        "mwk",
        "mxn",
        "myr",
        "mzn",
        "nad",
        "ngn",
        "nio",
        "nok",
        "npr",
        "nzd",
        "omr",
        "pab",
        "pen",
        "pgk",
        "php",
        "pkr",
        "pln",
        "pyg",
        "qar",
        "ron",
        "rsd",
        "rub",
        "rwf",
        "sar",
        "sbd",
        "scr",
        "sek",
        "sgd",
        "shp",
        "sle",
        "sos",
        "srd",
        "std",
        "szl",
        "thb",
        "tjs",
        "tnd",
        "top",
        "try",
        "ttd",
        "twd",
        "tzs",
        "uah",
        "ugx",
        "uyu",
        "uzs",
        "vnd",
        "vuv",
        "wst",
        "xaf",
        "xcd",
        "xof",
        "xpf",
        "yer",
        "zar",
        "zmw",
    ]
)


def amount_due(total: int, starting_balance: int) -> int:
    """What an invoice asks for: its total plus the customer's balance (a credit lowers
    it, a debit raises it), never below 0."""
    return max(total + starting_balance, 0)


def ending_balance(total: int, starting_balance: int) -> int:
    """The customer's balance once an invoice has applied it: the credit the total did
    not use up; a debit is all added to the invoice."""
    return min(total + starting_balance, 0)


def remaining(amount_due: int, amount_paid: int) -> int:
    return max(amount_due - amount_paid, 0)


def overpaid(amount_due: int, amount_paid: int) -> int:
    return max(amount_paid - amount_due, 0)
