"""A seedable card-payments simulator: string ids, merchants, channels, countries, devices.

Extends the handbook-style generative process of :mod:`fraudops.data.simulator` (after chapter 3.2
of Le Borgne et al., *Reproducible Machine Learning for Credit Card Fraud Detection — Practical
Handbook*, 2022) with the columns a card issuer sees and with fraud patterns that use them.
Written for fraudops; the parameters below are ours, chosen so that every pattern is visible
but none is trivially separable from genuine behaviour.

Genuine behaviour
    *Countries*: 12 ISO-2 codes with fixed weights (FR 22 %, DE 18 %, ES 12 % ... US 3 %).
    *Merchants* (``n_merchants``): a merchant category (``mcc``, 15 ISO 18245 codes with fixed
    weights, table :data:`MCC_TABLE`), a country drawn from the country weights and a channel
    fixed by its category: ``pos`` (grocery, fuel...), ``ecom`` (airlines, digital goods...),
    ``atm`` (6011, cash) or, for mixed categories, ``ecom`` with probability 0.4.
    *Cards* (``n_cards``): a home country (country weights), a rate λ ~ U(0.2, 1.6) payments a
    day, a spending factor ~ LogNormal(0, 0.35), 3–12 usual merchants (each a merchant of the
    home country with probability 0.85, else any e-commerce merchant, possibly foreign) and 1–3
    devices (the first usable from day 0, the others from a uniform day of the history).
    A share ``travel_share`` of cards makes one genuine trip abroad of 3–10 days.
    *Payments*: Poisson(λ) a card a day. The merchant is, on trip days, a random point-of-sale
    or ATM merchant of the trip country; otherwise one of the card's usual merchants with
    probability 0.8, else a random merchant of the home country (a new merchant). The
    payment's ``channel`` and ``country`` are the merchant's. Time of day ~ N(13.5 h, 3.5 h) on
    ``pos``/``atm`` and ~ N(15 h, 5 h) on ``ecom``, wrapped into the day (so some genuine
    e-commerce happens at night). Amount ~ LogNormal(ln median, σ) of the category times the
    card's factor, 2 decimals; ATM amounts are rounded to tens (at least 10). ``device`` is one
    of the card's devices usable that day on ``ecom``, ``"none"`` on ``pos`` and ``atm``.

Fraud patterns (``fraud_pattern``; 0 genuine). 1–3 relabel genuine payments, as in the
handbook; 4–6 add the fraudster's payments. Approximate shares of all rows with the defaults
(90 days, 5,000 cards, 2,000 merchants: 400,000–410,000 rows, 0.9–1.0 % fraud, measured on
seeds 0–2):

    1. *large amount* (≈ 0.20 %): every genuine amount above ``large_amount_threshold``.
    2. *compromised merchant* (≈ 0.24 %): ``merchant_compromise_rate`` of merchants a day
       (fractional counts rounded at random) are compromised; all their payments in the next
       28 days are frauds.
    3. *compromised card* (≈ 0.26 %): ``card_compromise_rate`` of cards a day; a third of their
       payments in the next 14 days get 5× amounts and are frauds.
    4. *card testing* (≈ 0.13 %): ``card_testing_rate`` events a card a day (Poisson per day);
       a burst of 3–8 e-commerce payments of U(0.5, 5) at random e-commerce merchants (new to
       the card) from one new device, within one hour.
    5. *cross-border spike* (≈ 0.09 %): ``cross_border_rate`` events a card a day; 3–6
       point-of-sale or ATM payments within 6 hours, each in a random country other than the
       card's home, at amounts of the merchant's category × 2.
    6. *night-time e-commerce takeover* (≈ 0.08 %): ``takeover_rate`` events a card a day; 2–5
       e-commerce payments between 00:00 and 06:00 from a new device at electronics, airline,
       digital-goods, gambling or department-store merchants, amount ~ LogNormal(ln 400, 0.5).

``fraud_pattern`` is the generator's ground truth and must never be a feature (like the
handbook's ``TX_FRAUD_SCENARIO``). Vectorised with numpy (loops only over days and patterns):
90 days × 5,000 cards in about a second.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import numpy as np
import pandas as pd

#: Output column names.
TX_ID: Final = "tx_id"
TX_TIME: Final = "tx_time"
CARD: Final = "card_token"
MERCHANT: Final = "merchant_id"
MCC: Final = "mcc"
CHANNEL: Final = "channel"
COUNTRY: Final = "country"
DEVICE: Final = "device"
AMOUNT: Final = "amount"
LABEL: Final = "is_fraud"
PATTERN: Final = "fraud_pattern"
COLUMNS: Final = (
    TX_ID,
    TX_TIME,
    CARD,
    MERCHANT,
    MCC,
    CHANNEL,
    COUNTRY,
    DEVICE,
    AMOUNT,
    LABEL,
    PATTERN,
)

#: ``fraud_pattern`` codes (0: genuine).
PATTERNS: Final = {
    1: "large_amount",
    2: "compromised_merchant",
    3: "compromised_card",
    4: "card_testing",
    5: "cross_border",
    6: "night_ecom_takeover",
}

#: Card home and merchant countries (ISO 3166-1 alpha-2) and their weights.
COUNTRIES: Final = ("FR", "DE", "ES", "IT", "GB", "NL", "BE", "PL", "SE", "PT", "IE", "US")
_COUNTRY_WEIGHTS: Final = (0.22, 0.18, 0.12, 0.10, 0.10, 0.06, 0.05, 0.05, 0.04, 0.03, 0.02, 0.03)

#: Channels; ``device`` is ``"none"`` off e-commerce.
CHANNELS: Final = ("pos", "ecom", "atm")
NO_DEVICE: Final = "none"

#: Merchant categories: (ISO 18245 code, description, channel kind, median amount in currency
#: units, log-sd σ, share of merchants). Channel kind ``mixed`` is ``ecom`` with probability 0.4.
MCC_TABLE: Final = (
    ("5411", "grocery", "pos", 30.0, 0.6, 0.20),
    ("5812", "restaurants", "pos", 25.0, 0.6, 0.15),
    ("5541", "fuel", "pos", 45.0, 0.4, 0.08),
    ("5912", "pharmacy", "pos", 20.0, 0.6, 0.05),
    ("4111", "transit", "pos", 8.0, 0.5, 0.05),
    ("5311", "department stores", "mixed", 60.0, 0.8, 0.07),
    ("5651", "clothing", "mixed", 55.0, 0.7, 0.08),
    ("5732", "electronics", "mixed", 150.0, 0.9, 0.04),
    ("5999", "miscellaneous retail", "mixed", 35.0, 0.8, 0.08),
    ("7011", "hotels", "mixed", 180.0, 0.6, 0.03),
    ("4511", "airlines", "ecom", 250.0, 0.6, 0.02),
    ("5815", "digital goods", "ecom", 12.0, 0.7, 0.06),
    ("4814", "telecom", "ecom", 35.0, 0.4, 0.03),
    ("7995", "gambling", "ecom", 40.0, 0.9, 0.02),
    ("6011", "cash withdrawal", "atm", 100.0, 0.6, 0.04),
)
#: Categories targeted by account takeover (pattern 6).
_TAKEOVER_MCCS: Final = ("5732", "4511", "5815", "7995", "5311")

_DAY: Final = 86_400
_HOUR: Final = 3_600


@dataclass(frozen=True)
class CardSimulationConfig:
    """Parameters of one simulated card-payments history.

    Attributes:
        days: length of the history in days (≥ 1).
        start: first day (00:00 of it is the first possible payment time).
        n_cards, n_merchants: population sizes (≥ 1 each).
        seed: random seed; the same config gives the same frame, bit for bit.
        travel_share: share of cards making one genuine 3–10-day trip abroad, in [0, 1].
        large_amount_threshold: pattern 1, every genuine amount above it (currency units, > 0).
        merchant_compromise_rate: pattern 2, share of merchants compromised a day (≥ 0).
        card_compromise_rate: pattern 3, share of cards compromised a day (≥ 0).
        card_testing_rate, cross_border_rate, takeover_rate: patterns 4–6, expected events a
            card a day (≥ 0); each event adds several fraudulent payments.
    """

    days: int = 90
    start: dt.date = dt.date(2024, 1, 1)
    n_cards: int = 5_000
    n_merchants: int = 2_000
    seed: int = 0
    travel_share: float = 0.1
    large_amount_threshold: float = 1_000.0
    merchant_compromise_rate: float = 1 / 10_000
    card_compromise_rate: float = 3 / 5_000
    card_testing_rate: float = 1 / 5_000
    cross_border_rate: float = 1 / 5_000
    takeover_rate: float = 1 / 5_000

    def __post_init__(self) -> None:
        if self.days < 1 or self.n_cards < 1 or self.n_merchants < 1:
            raise ValueError("days, n_cards and n_merchants must be >= 1")
        if not 0 <= self.travel_share <= 1:
            raise ValueError(f"travel_share must be in [0, 1], got {self.travel_share}")
        if self.large_amount_threshold <= 0:
            raise ValueError("large_amount_threshold must be > 0")
        rates = (
            self.merchant_compromise_rate,
            self.card_compromise_rate,
            self.card_testing_rate,
            self.cross_border_rate,
            self.takeover_rate,
        )
        if min(rates) < 0:
            raise ValueError("compromise and event rates must be >= 0")


class _Groups:
    """Members of each group (e.g. merchants by country) for vectorised sampling."""

    def __init__(self, keys: np.ndarray, n_groups: int, members: np.ndarray | None = None):
        members = np.arange(len(keys)) if members is None else members
        order = np.argsort(keys, kind="stable")
        self.flat = members[order]
        self.count = np.bincount(keys, minlength=n_groups)
        self.offset = np.r_[0, np.cumsum(self.count)[:-1]]

    def sample(self, group: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One random member per entry of ``group``; any member where the group is empty."""
        count = self.count[group]
        pick = self.offset[group] + np.floor(rng.random(len(group)) * np.maximum(count, 1))
        anywhere = rng.integers(0, len(self.flat), len(group))
        return np.where(count > 0, self.flat[pick.astype(np.int64)], self.flat[anywhere])


def _tokens(prefix: str, n: int, digits: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct ids ``prefix`` + ``digits`` random hex digits (numpy str array)."""
    values = rng.integers(0, 16**digits, n, dtype=np.int64)
    while True:
        _, first = np.unique(values, return_index=True)
        repeated = np.ones(n, dtype=bool)
        repeated[first] = False
        if not repeated.any():
            break
        values[repeated] = rng.integers(0, 16**digits, int(repeated.sum()), dtype=np.int64)
    hexes = np.strings.zfill(np.char.mod("%x", values), digits)
    return np.strings.add(prefix, hexes)


def _daily_counts(expected: float, days: int, rng: np.random.Generator) -> np.ndarray:
    """Whole counts a day whose mean is ``expected`` (the fraction rounded up at random)."""
    whole = np.floor(expected)
    return (whole + (rng.random(days) < expected - whole)).astype(np.int64)


def _compromised(
    n: int, days: int, per_day: np.ndarray, span: int, rng: np.random.Generator
) -> np.ndarray:
    """n × days bool: compromised on some day in (d - span, d] (handbook scenarios 2 and 3)."""
    starts = np.zeros((n, days), dtype=np.int32)
    for day, k in enumerate(per_day):
        if k:
            starts[rng.choice(n, size=min(int(k), n), replace=False), day] += 1
    running = np.cumsum(starts, axis=1)
    before = np.zeros_like(running)
    before[:, span:] = running[:, :-span] if span < days else 0
    return (running - before) > 0


def _events(
    rate: float, cfg: CardSimulationConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Days and cards of injected fraud events: Poisson(rate × n_cards) events a day."""
    per_day = rng.poisson(rate * cfg.n_cards, cfg.days)
    day = np.repeat(np.arange(cfg.days), per_day)
    card = rng.integers(0, cfg.n_cards, len(day))
    return day, card


def _lognormal(median: np.ndarray, sigma: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.exp(np.log(median) + sigma * rng.standard_normal(len(median)))


def simulate_card_payments(config: CardSimulationConfig | None = None) -> pd.DataFrame:
    """Simulate a labelled card-payments history (generative process: module docstring).

    Returns:
        About ``0.9 × n_cards × days`` rows (plus the injected frauds) × :data:`COLUMNS`,
        sorted by time: ``tx_id`` (str ``tx-000001``..., in time order), ``tx_time``
        (``datetime64[ns]``, whole seconds), ``card_token`` (str ``tok_`` + 12 hex),
        ``merchant_id`` (str ``mer_00000``...), ``mcc`` (str, 15 codes), ``channel``
        (``pos``/``ecom``/``atm``), ``country`` (ISO-2), ``device`` (str ``dev_`` + 10 hex on
        ``ecom``, ``"none"`` otherwise), ``amount`` (float64 ≥ 0, currency units, 2 decimals),
        ``is_fraud`` (int8 0/1), ``fraud_pattern`` (int8 0–6, see :data:`PATTERNS`; never a
        feature). Fraud share about 1 % with the defaults.

    Raises:
        ValueError: a configuration value out of range (see :class:`CardSimulationConfig`).
    """
    cfg = config or CardSimulationConfig()
    rng = np.random.default_rng(cfg.seed)
    n_countries = len(COUNTRIES)
    country_p = np.asarray(_COUNTRY_WEIGHTS) / np.sum(_COUNTRY_WEIGHTS)
    mcc_codes = np.array([m[0] for m in MCC_TABLE])
    mcc_kind = np.array([m[2] for m in MCC_TABLE])
    mcc_median = np.array([m[3] for m in MCC_TABLE])
    mcc_sigma = np.array([m[4] for m in MCC_TABLE])
    mcc_p = np.array([m[5] for m in MCC_TABLE])

    # merchants: category, country, channel (0 pos, 1 ecom, 2 atm)
    m_mcc = rng.choice(len(MCC_TABLE), cfg.n_merchants, p=mcc_p / mcc_p.sum())
    m_country = rng.choice(n_countries, cfg.n_merchants, p=country_p)
    kind = mcc_kind[m_mcc]
    m_channel = np.select(
        [kind == "pos", kind == "ecom", kind == "atm"],
        [0, 1, 2],
        default=np.where(rng.random(cfg.n_merchants) < 0.4, 1, 0),
    )
    by_country = _Groups(m_country, n_countries)
    ecom = np.flatnonzero(m_channel == 1)
    if len(ecom) == 0:  # tiny populations: let the first merchant sell online too
        ecom = np.array([0])
    ecom_any = _Groups(np.zeros(len(ecom), dtype=np.int64), 1, ecom)
    physical = np.flatnonzero(m_channel != 1)
    physical = physical if len(physical) else np.arange(cfg.n_merchants)
    physical_by_country = _Groups(m_country[physical], n_countries, physical)
    targets = np.flatnonzero(np.isin(mcc_codes[m_mcc], _TAKEOVER_MCCS) & (m_channel == 1))
    targets = targets if len(targets) else ecom
    takeover_any = _Groups(np.zeros(len(targets), dtype=np.int64), 1, targets)

    # cards: home, rate, spending factor, usual merchants, devices, an optional trip
    home = rng.choice(n_countries, cfg.n_cards, p=country_p)
    rate = rng.uniform(0.2, 1.6, cfg.n_cards)
    factor = np.exp(0.35 * rng.standard_normal(cfg.n_cards))
    n_usual = rng.integers(3, 13, cfg.n_cards)
    usual_home = by_country.sample(np.repeat(home, 12), rng).reshape(cfg.n_cards, 12)
    usual_online = ecom_any.sample(np.zeros(cfg.n_cards * 12, dtype=np.int64), rng)
    domestic = rng.random((cfg.n_cards, 12)) < 0.85
    usual = np.where(domestic, usual_home, usual_online.reshape(cfg.n_cards, 12))
    n_devices = rng.integers(1, 4, cfg.n_cards)
    device_day = np.sort(rng.integers(0, cfg.days, (cfg.n_cards, 3)), axis=1)
    device_day[:, 0] = 0
    device_day[np.arange(3)[None, :] >= n_devices[:, None]] = cfg.days + 1
    travels = rng.random(cfg.n_cards) < cfg.travel_share
    trip_start = rng.integers(0, cfg.days, cfg.n_cards)
    trip_end = np.where(travels, trip_start + rng.integers(3, 11, cfg.n_cards), -1)
    trip_country = (home + rng.integers(1, n_countries, cfg.n_cards)) % n_countries

    # genuine payments
    per_cell = rng.poisson(np.repeat(rate[:, None], cfg.days, axis=1)).ravel()
    card = np.repeat(np.repeat(np.arange(cfg.n_cards), cfg.days), per_cell)
    day = np.repeat(np.tile(np.arange(cfg.days), cfg.n_cards), per_cell)
    n = len(card)
    on_trip = (day >= trip_start[card]) & (day < trip_end[card])
    from_usual = rng.random(n) < 0.8
    usual_pick = usual[card, np.floor(rng.random(n) * n_usual[card]).astype(np.int64)]
    merchant = np.where(from_usual, usual_pick, by_country.sample(home[card], rng))
    merchant[on_trip] = physical_by_country.sample(trip_country[card[on_trip]], rng)
    channel = m_channel[merchant]
    online = channel == 1
    hour_mean = np.where(online, 15.0, 13.5) * _HOUR
    hour_sd = np.where(online, 5.0, 3.5) * _HOUR
    second = np.mod(rng.normal(hour_mean, hour_sd), _DAY).astype(np.int64)
    mcc = m_mcc[merchant]
    amount = _lognormal(mcc_median[mcc], mcc_sigma[mcc], rng) * factor[card]
    cash = channel == 2
    amount[cash] = np.maximum(np.round(amount[cash], -1), 10.0)
    amount = amount.round(2)
    usable = (device_day[card] <= day[:, None]).sum(axis=1)
    device = card * 3 + np.floor(rng.random(n) * usable).astype(np.int64)
    device = np.where(online, device, -1)

    # patterns 1-3 relabel genuine payments
    pattern = np.where(amount > cfg.large_amount_threshold, 1, 0).astype(np.int8)
    per_day = _daily_counts(cfg.merchant_compromise_rate * cfg.n_merchants, cfg.days, rng)
    merchant_hit = _compromised(cfg.n_merchants, cfg.days, per_day, 28, rng)
    pattern[(pattern == 0) & merchant_hit[merchant, day]] = 2
    per_day = _daily_counts(cfg.card_compromise_rate * cfg.n_cards, cfg.days, rng)
    card_hit = _compromised(cfg.n_cards, cfg.days, per_day, 14, rng)
    hit = card_hit[card, day] & (rng.random(n) < 1 / 3) & (pattern == 0)
    amount[hit] = (amount[hit] * 5).round(2)
    pattern[hit] = 3
    parts = [(card, day * _DAY + second, merchant, device, amount, pattern)]
    fraud_devices = 0

    # pattern 4: card testing bursts
    e_day, e_card = _events(cfg.card_testing_rate, cfg, rng)
    size = rng.integers(3, 9, len(e_day))
    row_event = np.repeat(np.arange(len(e_day)), size)
    begin = e_day * _DAY + rng.integers(0, _DAY - _HOUR, len(e_day))
    k = len(row_event)
    parts.append(
        (
            e_card[row_event],
            begin[row_event] + rng.integers(0, _HOUR, k),
            ecom_any.sample(np.zeros(k, dtype=np.int64), rng),
            cfg.n_cards * 3 + fraud_devices + row_event,
            rng.uniform(0.5, 5.0, k).round(2),
            np.full(k, 4, dtype=np.int8),
        )
    )
    fraud_devices += len(e_day)

    # pattern 5: cross-border spikes
    e_day, e_card = _events(cfg.cross_border_rate, cfg, rng)
    size = rng.integers(3, 7, len(e_day))
    row_event = np.repeat(np.arange(len(e_day)), size)
    begin = e_day * _DAY + rng.integers(0, _DAY, len(e_day))
    k = len(row_event)
    row_card = e_card[row_event]
    abroad = (home[row_card] + rng.integers(1, n_countries, k)) % n_countries
    spiked = physical_by_country.sample(abroad, rng)
    spike_amount = _lognormal(mcc_median[m_mcc[spiked]], mcc_sigma[m_mcc[spiked]], rng) * 2
    parts.append(
        (
            row_card,
            begin[row_event] + rng.integers(0, 6 * _HOUR, k),
            spiked,
            np.full(k, -1),
            (spike_amount * factor[row_card]).round(2),
            np.full(k, 5, dtype=np.int8),
        )
    )

    # pattern 6: night-time e-commerce account takeover from a new device
    e_day, e_card = _events(cfg.takeover_rate, cfg, rng)
    size = rng.integers(2, 6, len(e_day))
    row_event = np.repeat(np.arange(len(e_day)), size)
    begin = e_day * _DAY + rng.integers(0, int(4.5 * _HOUR), len(e_day))
    k = len(row_event)
    parts.append(
        (
            e_card[row_event],
            begin[row_event] + rng.integers(0, int(1.5 * _HOUR), k),
            takeover_any.sample(np.zeros(k, dtype=np.int64), rng),
            cfg.n_cards * 3 + fraud_devices + row_event,
            _lognormal(np.full(k, 400.0), np.full(k, 0.5), rng).round(2),
            np.full(k, 6, dtype=np.int8),
        )
    )
    fraud_devices += len(e_day)

    stacked: list[np.ndarray] = [np.concatenate(p) for p in zip(*parts, strict=True)]
    stacked[1] = np.minimum(stacked[1], cfg.days * _DAY - 1)  # a late spike stays in the history
    order = np.argsort(stacked[1], kind="stable")
    row_card, seconds, row_merchant, row_device, row_amount, row_pattern = (
        a[order] for a in stacked
    )

    card_tokens = _tokens("tok_", cfg.n_cards, 12, rng)
    device_tokens = np.append(_tokens("dev_", cfg.n_cards * 3 + fraud_devices, 10, rng), NO_DEVICE)
    merchant_ids = np.strings.add(
        "mer_", np.strings.zfill(np.arange(cfg.n_merchants).astype(str), 5)
    )
    width = max(6, len(str(len(row_card))))
    tx_ids = np.strings.add(
        "tx-", np.strings.zfill(np.arange(1, len(row_card) + 1).astype(str), width)
    )
    return pd.DataFrame(
        {
            TX_ID: tx_ids.astype(object),
            TX_TIME: pd.Timestamp(cfg.start) + pd.to_timedelta(seconds, unit="s"),
            CARD: card_tokens[row_card].astype(object),
            MERCHANT: merchant_ids[row_merchant].astype(object),
            MCC: mcc_codes[m_mcc[row_merchant]].astype(object),
            CHANNEL: np.array(CHANNELS)[m_channel[row_merchant]].astype(object),
            COUNTRY: np.array(COUNTRIES)[m_country[row_merchant]].astype(object),
            DEVICE: device_tokens[row_device].astype(object),
            AMOUNT: row_amount.astype(np.float64),
            LABEL: (row_pattern > 0).astype(np.int8),
            PATTERN: row_pattern.astype(np.int8),
        }
    )
