"""The simulated exchange's markets and currencies.

A built-in catalogue of real MAX pairs (TWD, USDT and BTC quoted) with rough
reference prices; when more markets are asked for, synthetic ones (``s001twd``,
``s001usdt``, ...) are generated from the seed so hundreds of pairs can be served.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Currency", "Market", "build_catalogue"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Currency:
    """One currency as ``/api/v3/currencies`` lists it."""

    currency: str
    type: str  # "fiat" or "crypto"
    precision: int

    def to_json(self) -> dict[str, object]:
        """MAX's JSON shape."""
        return {
            "currency": self.currency,
            "type": self.type,
            "precision": self.precision,
            "m_wallet_supported": self.type == "crypto",
            "m_wallet_mortgageable": self.type == "crypto",
            "m_wallet_borrowable": self.type == "crypto",
            "min_borrow_amount": "0",  # a decimal string, as MAX sends it
            "networks": [],
            "staking": None,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Market:
    """One market as ``/api/v3/markets`` lists it, plus its reference price."""

    id: str
    base_unit: str
    quote_unit: str
    base_unit_precision: int
    quote_unit_precision: int
    min_base_amount: Decimal
    min_quote_amount: Decimal
    reference_price: Decimal

    @property
    def tick(self) -> Decimal:
        """Smallest price step."""
        return Decimal(1).scaleb(-self.quote_unit_precision)

    @property
    def lot(self) -> Decimal:
        """Smallest volume step."""
        return Decimal(1).scaleb(-self.base_unit_precision)

    def to_json(self, status: str) -> dict[str, object]:
        """MAX's JSON shape (minimum amounts as numbers, as MAX sends them)."""
        return {
            "id": self.id,
            "status": status,
            "base_unit": self.base_unit,
            "base_unit_precision": self.base_unit_precision,
            "min_base_amount": float(self.min_base_amount),
            "quote_unit": self.quote_unit,
            "quote_unit_precision": self.quote_unit_precision,
            "min_quote_amount": float(self.min_quote_amount),
            "m_wallet_supported": True,
        }


# base, quote, reference price, base precision, quote precision, min base amount
_REAL: tuple[tuple[str, str, str, int, int, str], ...] = (
    ("btc", "twd", "3100000", 8, 1, "0.0001"),
    ("eth", "twd", "110000", 6, 1, "0.0025"),
    ("usdt", "twd", "32.15", 2, 3, "8"),
    ("usdc", "twd", "32.10", 2, 3, "8"),
    ("max", "twd", "8.5", 2, 4, "30"),
    ("ltc", "twd", "2900", 4, 1, "0.1"),
    ("bch", "twd", "14000", 4, 1, "0.02"),
    ("xrp", "twd", "70", 2, 3, "4"),
    ("doge", "twd", "12", 1, 4, "25"),
    ("sol", "twd", "6500", 4, 1, "0.04"),
    ("ada", "twd", "28", 1, 3, "10"),
    ("link", "twd", "520", 3, 2, "0.5"),
    ("bnb", "twd", "20000", 4, 1, "0.015"),
    ("trx", "twd", "8", 1, 4, "35"),
    ("dot", "twd", "150", 3, 2, "2"),
    ("avax", "twd", "1100", 3, 2, "0.25"),
    ("pol", "twd", "15", 1, 4, "20"),
    ("btc", "usdt", "96000", 6, 2, "0.0001"),
    ("eth", "usdt", "3400", 5, 2, "0.0025"),
    ("max", "usdt", "0.265", 2, 5, "30"),
    ("ltc", "usdt", "90", 4, 2, "0.1"),
    ("xrp", "usdt", "2.2", 2, 4, "4"),
    ("doge", "usdt", "0.38", 1, 5, "25"),
    ("sol", "usdt", "200", 3, 2, "0.04"),
    ("ada", "usdt", "0.87", 1, 4, "10"),
    ("link", "usdt", "16", 2, 3, "0.5"),
    ("bnb", "usdt", "620", 3, 2, "0.015"),
    ("trx", "usdt", "0.25", 1, 5, "35"),
    ("usdc", "usdt", "0.9995", 2, 4, "8"),
    ("eth", "btc", "0.0354", 4, 6, "0.0025"),
    ("ltc", "btc", "0.00094", 3, 7, "0.1"),
)

_MIN_QUOTE = {"twd": Decimal(250), "usdt": Decimal(8), "btc": Decimal("0.0001")}
_QUOTE_PRICE_TWD = {"twd": 1.0, "usdt": 32.15, "btc": 3_100_000.0}


def _currency(code: str) -> Currency:
    precision = {"twd": 0, "usdt": 6, "usdc": 6, "btc": 8, "eth": 8}.get(code, 8)
    return Currency(currency=code, type="fiat" if code == "twd" else "crypto", precision=precision)


def build_catalogue(n_markets: int, seed: int) -> tuple[list[Market], list[Currency]]:
    """The first ``n_markets`` markets (real ones first, then synthetic) and their currencies."""
    markets: list[Market] = []
    for base, quote, price, base_prec, quote_prec, min_base in _REAL[:n_markets]:
        markets.append(
            Market(
                id=f"{base}{quote}",
                base_unit=base,
                quote_unit=quote,
                base_unit_precision=base_prec,
                quote_unit_precision=quote_prec,
                min_base_amount=Decimal(min_base),
                min_quote_amount=_MIN_QUOTE[quote],
                reference_price=Decimal(price),
            )
        )
    rng = random.Random(seed * 7919 + 17)
    index = 0
    while len(markets) < n_markets:
        index += 1
        base = f"s{index:03d}"
        twd_price = 10 ** rng.uniform(-1.0, 5.0)
        for quote in ("twd", "usdt"):
            if len(markets) >= n_markets:
                break
            value = twd_price / _QUOTE_PRICE_TWD[quote]
            # about 5 significant digits of price
            exponent = int(f"{value:e}".split("e")[1])
            quote_prec = max(0, 4 - exponent)
            base_prec = max(0, min(8, 2 + exponent))
            lot = Decimal(1).scaleb(-base_prec)
            smallest = max(lot, Decimal(str(round(float(_MIN_QUOTE[quote]) / value, base_prec))))
            markets.append(
                Market(
                    id=f"{base}{quote}",
                    base_unit=base,
                    quote_unit=quote,
                    base_unit_precision=base_prec,
                    quote_unit_precision=quote_prec,
                    min_base_amount=smallest,
                    min_quote_amount=_MIN_QUOTE[quote],
                    reference_price=Decimal(str(round(value, quote_prec))).max(
                        Decimal(1).scaleb(-quote_prec) * 100
                    ),
                )
            )
    codes: dict[str, None] = {}
    for market in markets:
        codes.setdefault(market.base_unit)
        codes.setdefault(market.quote_unit)
    return markets, [_currency(code) for code in codes]
