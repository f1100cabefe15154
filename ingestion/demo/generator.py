"""A deterministic generator of multichannel demo data for a European retailer.

Each person is generated on its own from ``random.Random`` seeded with (seed, person index), so any person can be
generated independently, in any order, on any process, and the stream never holds more than one person. There is no
global random state. The same seed, index and ``now`` give the same person, byte for byte; message ids do not depend
on ``now`` at all (only timestamps do), so loading the same seed twice stores nothing new.

A person is delivered as the source systems would deliver them:

- ``web``: Segment page/track/identify messages of the website (anonymous sessions on one to three devices, some of
  which later log in: an identify with userId and email on the same anonymousId), with the consent banner's
  choices in ``context.consent.categoryPreferences``;
- ``shop``: Segment identify (account created) and "Order Completed" messages of the shop backend;
- ``crm``: rows of the CRM export (``CRM_COLUMNS``), with typos, national phone formats, nicknames and duplicates;
- ``notes``: call-center webhook records in German or English, some announcing an intent to cancel;
- ``email``: the e-mail service provider's webhook records (Email Delivered / Opened / Link Clicked / Unsubscribed).

Behaviour that predictions can learn: a persona (loyal, regular, occasional, churner, browser) drives order
frequency, basket size (so spend correlates with frequency), e-mail engagement and service notes; churners slow
down before they stop, open fewer e-mails, complain, announce cancellation and unsubscribe; purchases follow
interests (groups of products bought together), so item-to-item recommendations beat popularity.

``truth`` holds what the generator knows and the data only implies (persona, churn day, which records are the same
person): for tests and for evaluating predictions, never loaded as data.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import accumulate

from ingestion.demo import data

SPAN_DAYS = 548  # about 18 months of history
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
_EPOCH = datetime(1970, 1, 1)

PERSONAS = (("loyal", 20), ("regular", 24), ("occasional", 18), ("churner", 20), ("browser", 18))

CRM_COLUMNS = ("customer_no", "first_name", "last_name", "email", "phone", "street", "postcode", "city", "country",
               "birth_date", "membership", "created_at", "updated_at")

# Consent banner answers: (weight, email_marketing, personalization, analytics); None = never answered.
CONSENT_CHOICES = ((55, True, True, True), (12, False, True, True), (10, False, False, True),
                   (8, False, False, False), (15, None, None, None))

# Orders: mean days between orders (a range per person) by persona.
ORDER_GAP_DAYS = {"loyal": (45, 80), "regular": (100, 170), "churner": (40, 65)}
# Browse-only sessions per 30 active days.
BROWSE_RATE = {"loyal": 0.2, "regular": 0.15, "occasional": 0.15, "churner": 0.2, "browser": 0.35}
# Chance to open a campaign e-mail, by persona (churners decay towards their churn day).
OPEN_RATE = {"loyal": 0.5, "regular": 0.32, "occasional": 0.2, "churner": 0.38, "browser": 0.15}
CAMPAIGN_EVERY_DAYS = 7
CAMPAIGN_REACH = 0.16  # share of subscribers in a campaign's audience

_HOUR_WEIGHTS = (1, 0, 0, 0, 0, 1, 2, 4, 5, 6, 6, 6, 7, 6, 6, 6, 7, 9, 11, 12, 11, 8, 5, 2)  # UTC hours
_HOURS = tuple(range(24))
_FOLD = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "é": "e",
                       "è": "e", "ê": "e", "ë": "e", "à": "a", "â": "a", "ç": "c", "î": "i", "ï": "i", "ô": "o",
                       "û": "u", "ù": "u", "É": "E", "ı": "i", "'": "", " ": "", "-": ""})
_DROP_UMLAUTS = str.maketrans({"ä": "a", "ö": "o", "ü": "u", "Ä": "A", "Ö": "O", "Ü": "U", "ß": "s"})
_SPELL_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_PERM_MULT = 2_654_435_761  # odd, not a multiple of 3 or 5: a bijection modulo 36^k and 10^k

_COUNTRY_CODES = tuple(c[0] for c in data.COUNTRIES)
_COUNTRY_WEIGHTS = tuple(c[1] for c in data.COUNTRIES)
_COUNTRY = {c[0]: c for c in data.COUNTRIES}
_PERSONA_NAMES = tuple(p[0] for p in PERSONAS)
_PERSONA_WEIGHTS = tuple(p[1] for p in PERSONAS)
_INTEREST_WEIGHTS = tuple(i[1] for i in data.INTERESTS)
_PRODUCT_WEIGHTS = (6, 5, 4, 3, 3, 2)
_HOUR_CUM = tuple(accumulate(_HOUR_WEIGHTS))
_PRODUCT_CUM = tuple(accumulate(_PRODUCT_WEIGHTS))
_INTEREST_CUM = tuple(accumulate(_INTEREST_WEIGHTS))
_INTEREST_RANGE = range(len(data.INTERESTS))
_PRODUCT_NAMES = {p[0]: p[1] for interest in data.INTERESTS for p in interest[2]}


# --- small helpers ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _iso_date(day: int) -> str:
    return (_EPOCH + timedelta(days=day)).date().isoformat()


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with millisecond precision: 2025-03-04T18:22:05.123Z."""
    day, rest = divmod(ms, DAY_MS)
    seconds, millis = divmod(rest, 1000)
    minutes, second = divmod(seconds, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_iso_date(day)}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def _uuid(rng: random.Random) -> str:
    """A version 4 UUID drawn from the person's stream."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _message_id(rng: random.Random) -> str:
    """Message ids as analytics.js writes them."""
    return f"ajs-next-{rng.getrandbits(128):032x}"


def _base36(number: int, width: int) -> str:
    digits = []
    while number:
        number, rest = divmod(number, 36)
        digits.append(_B36[rest])
    return "".join(reversed(digits)).rjust(width, "0")


def _permuted(index: int, seed: int, modulus: int) -> int:
    """A bijection of the index (for index < modulus), so that generated e-mails and phones are unique."""
    return (index * _PERM_MULT + seed * 7_919 + 12_345) % modulus


def _fold(text: str) -> str:
    return text.translate(_FOLD).lower()


@dataclass(frozen=True)
class Clock:
    """``now`` and the history span, in epoch milliseconds; everything generated lies before ``latest``."""

    now_ms: int
    midnight_ms: int

    @classmethod
    def at(cls, now: datetime) -> Clock:
        if now.tzinfo is not None:
            now = now.astimezone(UTC).replace(tzinfo=None)
        now_ms = int((now - _EPOCH) / timedelta(milliseconds=1))
        return cls(now_ms=now_ms, midnight_ms=now_ms - now_ms % DAY_MS)

    @property
    def latest(self) -> int:
        """Sessions start no later than an hour ago, so that everything they bring lies in the past."""
        return self.now_ms - HOUR_MS

    def moment(self, day: float, hour: int, offset_ms: int) -> int:
        """A moment ``day`` days before today at ``hour`` UTC, moved back into the past if it would be later."""
        ms = self.midnight_ms - int(day) * DAY_MS + hour * HOUR_MS + offset_ms
        if ms > self.latest:
            ms = self.latest - (ms - self.latest) % (6 * HOUR_MS)
        return ms


@dataclass
class DemoPerson:
    index: int
    truth: dict
    web: list[dict] = field(default_factory=list)
    shop: list[dict] = field(default_factory=list)
    crm: list[dict] = field(default_factory=list)
    notes: list[dict] = field(default_factory=list)
    email: list[dict] = field(default_factory=list)

    @property
    def record_count(self) -> int:
        return len(self.web) + len(self.shop) + len(self.crm) + len(self.notes) + len(self.email)


# --- the generator ------------------------------------------------------------------------------------------------


def person_rng(seed: int, index: int) -> random.Random:
    """The random stream of one person: derived from (seed, index) only (string seeds hash with SHA-512, stable
    across processes and Python runs)."""
    return random.Random(f"cdp-demo/{seed}/{index}")


def demo_people(*, profiles: int, seed: int = 42, now: datetime | None = None, start: int = 0,
                stop: int | None = None) -> Iterator[DemoPerson]:
    """Persons ``start`` to ``stop`` (default: all ``profiles``), one at a time."""
    clock = Clock.at(now or datetime.now(UTC))
    for index in range(start, profiles if stop is None else min(stop, profiles)):
        yield person_generate(seed=seed, index=index, clock=clock)


def person_generate(*, seed: int, index: int, clock: Clock) -> DemoPerson:
    return _PersonBuilder(seed, index, clock).build()


class _PersonBuilder:
    def __init__(self, seed: int, index: int, clock: Clock):
        self.seed = seed
        self.index = index
        self.clock = clock
        self.rng = person_rng(seed, index)

    # -- who -------------------------------------------------------------------------------------------------------

    def build(self) -> DemoPerson:
        self._identity()
        self._behaviour()
        person = DemoPerson(index=self.index, truth=self.truth)
        self.person = person
        self._web_and_shop()
        self._crm()
        self._notes()
        self._email()
        for records in (person.web, person.shop, person.notes, person.email):
            records.sort(key=_timestamp_key)
        return person

    def _identity(self) -> None:
        rng = self.rng
        country = rng.choices(_COUNTRY_CODES, _COUNTRY_WEIGHTS)[0]
        _, _, locale, language, domains = _COUNTRY[country]
        group = data.NAME_GROUP[country]
        female = rng.random() < 0.52
        first = rng.choice(data.FIRST_NAMES[group][0 if female else 1])
        last = rng.choice(data.LAST_NAMES[group])
        age_days = int(365.25 * min(88, max(18, rng.gauss(44, 14))))
        birth = (_EPOCH + timedelta(milliseconds=self.clock.midnight_ms, days=-age_days - rng.randrange(365))).date()
        token = _base36(_permuted(self.index, self.seed, 36**5), 5)
        f, la = _fold(first), _fold(last)
        local = rng.choice((f"{f}.{la}.{token}", f"{f[0]}.{la}{token}", f"{f}{la}{token}", f"{la}.{f}_{token}",
                            f"{f}_{token}"))
        email = f"{local}@{rng.choice(domains)}"
        other_email = rng.choice((f"{f[0]}{la}.{token}@{rng.choice(data.WORK_DOMAINS)}",
                                  f"{la}{f[0]}_{token}@{rng.choice(domains)}"))
        city, postcodes = rng.choice(data.CITIES[country])
        street = rng.choice(data.STREETS[group])
        number = str(rng.randint(1, 140)) + ("abc"[rng.randrange(3)] if rng.random() < 0.08 else "")
        street_line = f"{number} {street}" if group in ("fr", "en") else f"{street} {number}"
        phone_e164, phone_formats = self._phone(country)
        self.truth = {
            "index": self.index, "country": country, "locale": locale, "language": language, "female": female,
            "first_name": first, "last_name": last, "birth_date": birth.isoformat(), "email": email,
            "other_email": other_email, "phone": phone_e164, "street": street_line,
            "postcode": rng.choice(postcodes), "city": city,
            # The ids other systems give this person: the help desk's contact, the e-mail service's subscriber.
            "helpdesk_contact": f"HD{_base36(_permuted(self.index, self.seed + 2, 36**6), 6).upper()}",
            "esp_contact": _base36(_permuted(self.index, self.seed + 3, 36**7), 7),
        }
        self.phone_formats = phone_formats

    def _phone(self, country: str) -> tuple[str, tuple[str, ...]]:
        rng = self.rng
        calling, plans = data.MOBILE_PLANS[country]
        prefix, digits = rng.choice(plans)
        base = min(digits, 7)
        sub = f"{_permuted(self.index, self.seed + 1, 10**base):0{base}d}"
        if digits > base:
            sub = str(rng.randint(1, 9)) + sub
        cc = calling[1:]
        if country == "DE":
            formats = (f"0{prefix} {sub}", f"+49 ({prefix}) {sub[:3]}-{sub[3:]}", f"+49 {prefix} {sub}",
                       f"0{prefix}/{sub}", f"0{prefix}{sub}", f"0049 {prefix} {sub}")
        elif country == "AT":
            formats = (f"+43 {prefix} {sub}", f"0043 {prefix}/{sub}", f"+43 ({prefix}) {sub}", f"0{prefix} {sub}")
        elif country == "CH":
            s = sub
            formats = (f"+41 {prefix} {s[:3]} {s[3:5]} {s[5:]}", f"0041 {prefix} {s[:3]} {s[3:5]} {s[5:]}",
                       f"0{prefix} {s[:3]} {s[3:5]} {s[5:]}")
        elif country == "FR":
            digits = prefix + sub  # 9 digits: 6 12 34 56 78
            pairs = " ".join(digits[i:i + 2] for i in range(1, 9, 2))
            formats = (f"+33 {digits[0]} {pairs}", f"+33{digits}", f"0{digits[0]} {pairs}")
        elif country == "NL":
            digits = prefix + sub  # 9 digits: 6 12345678
            formats = (f"+31 {digits[0]} {digits[1:]}", f"+31{digits}", f"0{digits[0]}-{digits[1:]}")
        else:
            head, tail = (prefix + sub)[:4], (prefix + sub)[4:]  # 10 digits: 7400 123456
            formats = (f"+44 {head} {tail}", f"+44 ({head}) {tail}", f"0{head} {tail}")
        return f"+{cc}{prefix}{sub}", formats

    # -- how they behave -------------------------------------------------------------------------------------------

    def _behaviour(self) -> None:
        rng, truth = self.rng, self.truth
        persona = rng.choices(_PERSONA_NAMES, _PERSONA_WEIGHTS)[0]
        if rng.random() < 0.07:
            start_day = rng.uniform(1, 45)  # new this month or last
        elif persona == "loyal":
            start_day = rng.uniform(150, SPAN_DAYS)
        else:
            start_day = rng.uniform(45, SPAN_DAYS)
        churn_day = None
        if persona == "churner":
            if start_day < 120:
                persona = "occasional"
            else:
                # Active for at least 90 days, then gone; nobody churns in the last two weeks (not yet visible).
                churn_day = rng.uniform(14, start_day - 90)
        end_day = churn_day or 0.0
        interests = rng.choices(_INTEREST_RANGE, cum_weights=_INTEREST_CUM, k=2)
        if interests[1] == interests[0]:
            interests[1] = (interests[0] + 1 + rng.randrange(len(data.INTERESTS) - 1)) % len(data.INTERESTS)
        wealth = rng.lognormvariate(0, 0.35) * {"loyal": 1.3, "regular": 1.05}.get(persona, 1.0)
        n_devices = rng.choices((1, 2, 3), (55, 35, 10))[0]
        devices = [(_uuid(rng), rng.choice(data.USER_AGENTS)) for _ in range(n_devices)]
        # The first device logs in once there is an account; others only sometimes (the rest stay anonymous).
        self.device_logs_in = [True] + [rng.random() < 0.6 for _ in range(n_devices - 1)]
        consent = rng.choices(CONSENT_CHOICES, [c[0] for c in CONSENT_CHOICES])[0]
        truth.update(persona=persona, start_day=round(start_day, 3), churn_day=churn_day and round(churn_day, 3),
                     churned=churn_day is not None, interests=[data.INTERESTS[i][0] for i in interests],
                     wealth=round(wealth, 3), anonymous_ids=[d[0] for d in devices], linked_anonymous_ids=[],
                     consent=None if consent[1] is None else
                     {"email_marketing": consent[1], "personalization": consent[2], "analytics": consent[3]})
        self.persona, self.start_day, self.churn_day, self.end_day = persona, start_day, churn_day, end_day
        self.interests, self.wealth, self.devices = interests, wealth, devices
        self.order_days = self._order_days()
        self.user_id = None
        self.account_day = None
        if self.order_days and rng.random() < 0.85:
            self.account_day = self.order_days[0]
        elif not self.order_days and rng.random() < 0.25:
            self.account_day = rng.uniform(end_day, start_day)
        if self.account_day is not None:
            self.user_id = _uuid(rng)
        truth.update(user_id=self.user_id, orders=len(self.order_days))
        self.logged_in: set[int] = set()
        self.unsubscribe_ms: int | None = None
        self.bought: list[tuple[str, int]] = []  # (product id, epoch ms)
        self.revenue = 0.0
        self.orders: list[tuple[int, str]] = []  # (epoch ms, order id)

    def _order_days(self) -> list[float]:
        """Days (before now) of this person's orders, oldest first."""
        rng, persona = self.rng, self.persona
        start, end = self.start_day, self.end_day
        if persona == "browser":
            return [rng.uniform(end, start)] if rng.random() < 0.2 else []
        if persona == "occasional":
            count = rng.choices((1, 2, 3), (55, 30, 15))[0]
            return sorted((rng.uniform(end, start) for _ in range(count)), reverse=True)
        gap = rng.uniform(*ORDER_GAP_DAYS[persona])
        growth = rng.uniform(1.25, 1.6) if persona == "churner" else 1.0
        days = []
        day = start - rng.uniform(0, min(gap, start - end) * 0.5)
        while day > end and len(days) < 60:
            days.append(day)
            day -= gap * rng.uniform(0.4, 1.6)
            gap *= growth
        return days

    # -- web sessions and orders -----------------------------------------------------------------------------------

    def _web_and_shop(self) -> None:
        rng = self.rng
        active_days = self.start_day - self.end_day
        browse = [rng.uniform(self.end_day, self.start_day)
                  for _ in range(_poisson(rng, BROWSE_RATE[self.persona] * active_days / 30 + 0.3))]
        if not browse and not self.order_days:  # everyone in the data came by at least once
            browse.append(rng.uniform(self.end_day, self.start_day))
        sessions = [(day, True) for day in self.order_days] + [(day, False) for day in browse]
        sessions.sort(key=lambda s: -s[0])  # oldest first
        self.abandoned = 0
        for day, buys in sessions:
            self._session(day, buys)
        used = {m["anonymousId"] for m in self.person.web}
        self.truth["anonymous_ids"] = [d[0] for d in self.devices if d[0] in used]  # devices seen in the data
        self.truth.update(abandoned_carts=self.abandoned, revenue=round(self.revenue, 2),
                          last_order_day=round(self.order_days[-1], 3) if self.order_days else None)

    def _context(self, device: tuple, ms: int, path: str, title: str) -> dict:
        context = {
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "locale": self.truth["locale"],
            "userAgent": device[1][1],
            "page": {"path": path, "url": data.SHOP_HOST + path, "title": title},
        }
        if self.truth["consent"] is not None:
            context["consent"] = {"categoryPreferences": dict(self.truth["consent"])}
        return context

    def _web(self, kind: str, device: tuple, device_no: int, ms: int, *, path: str, title: str, name: str = "",
             event: str = "", properties: dict | None = None, traits: dict | None = None) -> None:
        message = {"type": kind, "messageId": _message_id(self.rng), "anonymousId": device[0], "timestamp": iso(ms)}
        if device_no in self.logged_in:
            message["userId"] = self.user_id
        if kind == "page":
            message["name"] = name
            message["properties"] = {"path": path, "url": data.SHOP_HOST + path, "title": title, **(properties or {})}
        elif kind == "track":
            message["event"] = event
            message["properties"] = properties or {}
        else:
            message["traits"] = traits or {}
        message["context"] = self._context(device, ms, path, title)
        self.person.web.append(message)

    def _session(self, day: float, buys: bool) -> None:
        rng, clock = self.rng, self.clock
        device_no = rng.randrange(len(self.devices)) if rng.random() < 0.6 else 0
        device = self.devices[device_no]
        start = clock.moment(day, rng.choices(_HOURS, cum_weights=_HOUR_CUM)[0], rng.randrange(HOUR_MS))
        ms = start
        interest = self._pick_interest()
        products = data.INTERESTS[interest][2]
        category = products[0][2].split("/")[0]
        if rng.random() < 0.5:
            path, title, page = "/", "Startseite", "Home"
        else:
            path, title, page = f"/c/{category}", category.title(), "Category"
        self._web("page", device, device_no, ms, path=path, title=title, name=page,
                  properties={"referrer": rng.choice(data.REFERRERS)})
        # Logging in: on the first session after the account exists, and on other devices now and then.
        if (self.user_id is not None and device_no not in self.logged_in and day <= self.account_day + 1e-9
                and self.device_logs_in[device_no] and (buys or rng.random() < 0.5)):
            ms += rng.randrange(15_000, 90_000)
            self.logged_in.add(device_no)
            self.truth["linked_anonymous_ids"].append(device[0])
            self._web("identify", device, device_no, ms, path="/login", title="Anmelden",
                      traits={"email": self.truth["email"]})
        basket = self._basket(interest) if buys or rng.random() < 0.3 else []
        viewed = list(basket)
        for _ in range(rng.choices((0, 1, 2), (6, 3, 1))[0] if basket else rng.choices((1, 2, 3), (6, 3, 1))[0]):
            viewed.append((rng.choices(products, cum_weights=_PRODUCT_CUM)[0], 1))
        seen = set()
        for product, _ in viewed:
            if product[0] in seen:
                continue
            seen.add(product[0])
            ms += rng.randrange(20_000, 180_000)
            self._web("track", device, device_no, ms, path=f"/p/{product[0].lower()}", title=product[1],
                      event="Product Viewed", properties=_product_properties(product))
        if not basket:
            return
        cart_id = _uuid(self.rng)[:18]
        for product, quantity in basket:
            ms += rng.randrange(10_000, 90_000)
            self._web("track", device, device_no, ms, path=f"/p/{product[0].lower()}", title=product[1],
                      event="Product Added", properties={**_product_properties(product), "quantity": quantity,
                                                         "cart_id": cart_id})
        value = round(sum(p[3] * q for p, q in basket), 2)
        if buys or rng.random() < 0.45:
            ms += rng.randrange(30_000, 240_000)
            self._web("track", device, device_no, ms, path="/checkout", title="Kasse", event="Checkout Started",
                      properties={"cart_id": cart_id, "value": value, "currency": "EUR",
                                  "products": [_line(p, q) for p, q in basket]})
        if not buys:
            self.abandoned += 1
            return
        ms += rng.randrange(60_000, 420_000)
        self._order(ms, device, basket, value, cart_id, day)

    def _pick_interest(self) -> int:
        roll = self.rng.random()
        if roll < 0.65:
            return self.interests[0]
        if roll < 0.85:
            return self.interests[1]
        return self.rng.choices(_INTEREST_RANGE, cum_weights=_INTEREST_CUM)[0]

    def _basket(self, interest: int) -> list[tuple[tuple, int]]:
        rng = self.rng
        products = data.INTERESTS[interest][2]
        size = 1 + min(3, _poisson(rng, 0.35 * self.wealth))
        owned = {pid for pid, _ in self.bought}
        basket, ids = [], set()
        # Consumables bought before come back; durable goods are rarely bought twice.
        for product in products:
            if product[4] and product[0] in owned and rng.random() < 0.45:
                basket.append((product, rng.choice((1, 1, 2, 3))))
                ids.add(product[0])
        for _ in range(size * 3):
            if len(basket) >= size:
                break
            product = rng.choices(products, cum_weights=_PRODUCT_CUM)[0]
            if product[0] in ids or (not product[4] and product[0] in owned):
                continue
            ids.add(product[0])
            basket.append((product, rng.choice((1, 1, 1, 2)) if product[4] else 1))
        if not basket:
            product = products[rng.randrange(len(products))]
            basket.append((product, 1))
        return basket

    def _order(self, ms: int, device: tuple, basket: list, value: float, cart_id: str, day: float) -> None:
        rng, truth = self.rng, self.truth
        if self.user_id is not None and day <= self.account_day + 1e-9 and not truth.get("account_created"):
            truth["account_created"] = True
            traits = {"email": truth["email"], "first_name": truth["first_name"], "last_name": truth["last_name"],
                      "phone": rng.choice(self.phone_formats) if rng.random() < 0.7 else None,
                      "street": truth["street"], "postcode": truth["postcode"], "city": truth["city"],
                      "country": truth["country"],
                      "birth_date": truth["birth_date"] if rng.random() < 0.4 else None}
            self.person.shop.append({
                "type": "identify", "messageId": _message_id(rng), "userId": self.user_id,
                "timestamp": iso(ms - 30_000),
                "traits": {k: v for k, v in traits.items() if v is not None},
                "context": {"library": {"name": "shop-backend", "version": "2.3"}}})
        shipping = 0.0 if value >= 50 else 4.95
        order_id = f"{_base36(rng.getrandbits(40), 8).upper()}"
        message = {
            "type": "track", "event": "Order Completed", "messageId": _message_id(rng), "timestamp": iso(ms),
            "properties": {"order_id": order_id, "checkout_id": cart_id, "total": round(value + shipping, 2),
                           "revenue": value, "shipping": shipping, "tax": round(value * 0.19 / 1.19, 2),
                           "currency": "EUR", "products": [_line(p, q) for p, q in basket]},
            "context": {"library": {"name": "shop-backend", "version": "2.3"}},
        }
        if self.user_id is not None and day <= self.account_day + 1e-9:
            message["userId"] = self.user_id
        else:  # guest checkout: the browser's anonymous id and the e-mail typed at the checkout
            message["anonymousId"] = device[0]
            message["context"]["traits"] = {"email": truth["email"]}
        self.person.shop.append(message)
        self.revenue += value
        self.orders.append((ms, order_id))
        self.bought.extend((p[0], ms) for p, _ in basket)

    # -- CRM -------------------------------------------------------------------------------------------------------

    def _crm(self) -> None:
        rng, truth = self.rng, self.truth
        in_crm = rng.random() < (0.7 if self.order_days else 0.12)
        truth["crm"] = []
        if not in_crm:
            return
        rows = 2 if rng.random() < 0.04 else 1
        created = self.clock.moment(self.start_day, 9, rng.randrange(8 * HOUR_MS))
        for row in range(rows):
            number = 10_000_000 * (1 + self.seed % 9) + self.index * 2 + row
            variants = []
            if row == 1 or rng.random() < 0.3:
                variants = rng.sample(("umlaut_dropped", "umlaut_spelled", "transposed", "nickname", "other_email",
                                       "upper", "street_abbrev"), rng.choice((1, 1, 2)))
            first, last = truth["first_name"], truth["last_name"]
            email, street = truth["email"], truth["street"]
            for variant in variants:
                if variant in ("umlaut_dropped", "umlaut_spelled"):
                    table = _DROP_UMLAUTS if variant == "umlaut_dropped" else _SPELL_UMLAUTS
                    if last.translate(table) != last:
                        last = last.translate(table)
                    elif first.translate(table) != first:
                        first = first.translate(table)
                    else:
                        last = _transpose(rng, last)
                elif variant == "transposed":
                    last = _transpose(rng, last)
                elif variant == "nickname":
                    first = rng.choice(data.NICKNAMES.get(first, (first[:4] if len(first) > 5 else first,)))
                elif variant == "other_email":
                    email = truth["other_email"]
                elif variant == "upper":
                    last = last.upper()
                elif variant == "street_abbrev":
                    street = street.replace("straße", "str.").replace("Straße", "Str.").replace("weg", "wg.")
            if rng.random() < 0.08:
                email = ""
            elif rng.random() < 0.1:
                email = email.title() if "@" in email else email  # Anna.Mueller@Gmx.De: case varies
            updated = created + rng.randrange(int(max(1.0, self.start_day - self.end_day)) * DAY_MS)
            self.person.crm.append({
                "customer_no": str(number), "first_name": first, "last_name": last, "email": email,
                "phone": rng.choice(self.phone_formats) if rng.random() < 0.85 else "",
                "street": street, "postcode": truth["postcode"], "city": truth["city"],
                "country": rng.choice(data.COUNTRY_SPELLINGS[truth["country"]]),
                "birth_date": truth["birth_date"] if rng.random() < 0.8 else "",
                "membership": "plus" if self.persona in ("loyal", "churner") and rng.random() < 0.5 else "",
                "created_at": iso(created), "updated_at": iso(min(updated, self.clock.latest)),
            })
            truth["crm"].append({"customer_no": str(number), "variants": variants, "email": email})

    # -- call-center notes -----------------------------------------------------------------------------------------

    def _notes(self) -> None:
        rng, truth = self.rng, self.truth
        plan: list[tuple[str, float]] = []
        if self.persona == "churner":
            if rng.random() < 0.6:
                plan.append(("complaint", self.churn_day + rng.uniform(20, 110)))
            if rng.random() < 0.55:
                plan.append(("cancel", self.churn_day + rng.uniform(-3, 40)))
            if rng.random() < 0.1:
                plan.append(("neutral", rng.uniform(self.churn_day, self.start_day)))
        elif self.persona in ("loyal", "regular"):
            for kind, chance in (("neutral", 0.3), ("praise", 0.18), ("complaint", 0.08), ("cancel", 0.02)):
                if rng.random() < chance:
                    plan.append((kind, rng.uniform(self.end_day, self.start_day)))
        else:
            for kind, chance in (("neutral", 0.1), ("complaint", 0.05), ("praise", 0.03)):
                if rng.random() < chance:
                    plan.append((kind, rng.uniform(self.end_day, self.start_day)))
        truth["cancel_intent"] = any(kind == "cancel" for kind, _ in plan)
        truth["notes"] = [kind for kind, _ in plan]
        crm = truth["crm"]
        for kind, day in plan:
            day = max(0.0, min(day, self.start_day))
            language = truth["language"] if rng.random() < 0.9 else ("en" if truth["language"] == "de" else "de")
            template = rng.choice(data.NOTES[kind][language])
            ms = self.clock.moment(day, rng.randint(7, 17), rng.randrange(HOUR_MS))
            earlier = [order_id for at, order_id in self.orders if at < ms]
            bought = [pid for pid, at in self.bought if at < ms]
            product = _PRODUCT_NAMES[bought[-1]] if bought else data.INTERESTS[self.interests[0]][2][0][1]
            words = {key: forms[0 if truth["female"] else 1] for key, forms in data.NOTE_GENDER_WORDS.items()}
            text = template.format(order=earlier[-1] if earlier else _base36(rng.getrandbits(40), 8).upper(),
                                   days=rng.randint(5, 30), product=product, **words)
            record = {"ticket_id": f"T-{_base36(rng.getrandbits(36), 7).upper()}", "created_at": iso(ms),
                      "channel": rng.choice(("phone", "phone", "phone", "chat", "email")),
                      "agent": f"agent-{rng.randint(1, 40):02d}", "language": language,
                      "subject": data.NOTE_SUBJECTS[kind][0 if language == "de" else 1], "note": text}
            # The help desk knows the caller as its own contact, with the e-mail and/or the phone number, and the
            # agent notes the customer number when the caller gives it.
            record["contact_id"] = truth["helpdesk_contact"]
            if rng.random() < 0.8:
                record["email"] = truth["email"]
            if "email" not in record or rng.random() < 0.4:
                record["phone"] = rng.choice(self.phone_formats)
            if crm and rng.random() < 0.6:
                record["customer_no"] = crm[0]["customer_no"]
            self.person.notes.append(record)

    # -- e-mail engagement -----------------------------------------------------------------------------------------

    def _email(self) -> None:
        rng, truth, clock = self.rng, self.truth, self.clock
        consent = truth["consent"]
        subscribed = (consent is not None and consent["email_marketing"]
                      and (self.user_id is not None or self.order_days))
        truth["unsubscribed"] = False
        if not subscribed:
            return
        unsubscribe_day = None
        if self.persona == "churner" and rng.random() < 0.5:
            unsubscribe_day = max(0.5, self.churn_day + rng.uniform(-25, 20))
        elif rng.random() < 0.03:
            unsubscribe_day = rng.uniform(0.5, self.start_day)
        base = OPEN_RATE[self.persona]
        first = int(self.start_day // CAMPAIGN_EVERY_DAYS)
        for k in range(first, -1, -1):
            day = k * CAMPAIGN_EVERY_DAYS + 3
            if day > self.start_day:
                continue
            if unsubscribe_day is not None and day < unsubscribe_day:
                self._unsubscribe(unsubscribe_day)
                return
            if rng.random() >= CAMPAIGN_REACH:
                continue
            sent = clock.midnight_ms - day * DAY_MS + 8 * HOUR_MS + (k * 37 % 120) * 60_000
            campaign = _campaign(k, sent)
            esp_id = _uuid(rng)
            self._esp("Email Delivered", sent + rng.randrange(5_000, 120_000), campaign, esp_id)
            if self.churn_day is not None:
                # Engagement fades over the last 120 days before leaving, and almost stops after.
                distance = day - self.churn_day
                chance = base * max(0.05, min(1.0, distance / 120)) if distance > 0 else 0.03
            else:
                chance = base
            if rng.random() < chance:
                opened = sent + int(rng.expovariate(1 / (6 * HOUR_MS))) % (48 * HOUR_MS) + 60_000
                self._esp("Email Opened", opened, campaign, esp_id)
                if rng.random() < 0.3 + 0.1 * (self.persona == "loyal"):
                    product = rng.choice(data.INTERESTS[self.interests[0]][2])
                    self._esp("Email Link Clicked", opened + rng.randrange(5_000, 300_000), campaign, esp_id,
                              url=f"{data.SHOP_HOST}/p/{product[0].lower()}?utm_campaign={campaign[0]}")
        if unsubscribe_day is not None:
            self._unsubscribe(unsubscribe_day)

    def _unsubscribe(self, day: float) -> None:
        ms = self.clock.moment(day, self.rng.randint(8, 21), self.rng.randrange(HOUR_MS))
        self.unsubscribe_ms = ms
        self.truth["unsubscribed"] = True
        self._esp("Email Unsubscribed", ms, None, _uuid(self.rng))
        # Web messages after this moment carry the withdrawn e-mail consent.
        after = iso(ms)
        for message in self.person.web:
            if message["timestamp"] >= after and "consent" in message["context"]:
                message["context"]["consent"]["categoryPreferences"]["email_marketing"] = False

    def _esp(self, event: str, ms: int, campaign: tuple | None, esp_id: str, url: str = "") -> None:
        record = {"event_id": _uuid(self.rng), "event": event, "contact_id": self.truth["esp_contact"],
                  "email": self.truth["email"],
                  "timestamp": iso(min(ms, self.clock.now_ms - 60_000)), "esp_message_id": esp_id}
        if campaign is not None:
            record["campaign_id"], record["campaign_name"] = campaign
        if url:
            record["url"] = url
        self.person.email.append(record)


# --- helpers ------------------------------------------------------------------------------------------------------


def _timestamp_key(record: dict) -> str:
    return record.get("timestamp") or record.get("created_at") or ""


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method; means here are small."""
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    limit, count, product = pow(2.718281828459045, -mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _transpose(rng: random.Random, name: str) -> str:
    if len(name) < 4:
        return name + name[-1]
    for _ in range(5):
        i = rng.randrange(1, len(name) - 2)
        if name[i] != name[i + 1] and name[i].isalpha() and name[i + 1].isalpha():
            return name[:i] + name[i + 1] + name[i] + name[i + 2:]
    return name[:-1]


def _product_properties(product: tuple) -> dict:
    return {"product_id": product[0], "sku": f"SKU-{product[0][1:]}", "name": product[1], "category": product[2],
            "price": product[3], "currency": "EUR"}


def _line(product: tuple, quantity: int) -> dict:
    return {"product_id": product[0], "sku": f"SKU-{product[0][1:]}", "name": product[1], "category": product[2],
            "price": product[3], "quantity": quantity}


_MONTHS_DE = ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
              "November", "Dezember")


def _campaign(k: int, sent_ms: int) -> tuple[str, str]:
    """Campaign k (weeks before now), the same for every recipient: its id and name from its send date."""
    sent = _EPOCH + timedelta(milliseconds=sent_ms)
    kind, label = data.CAMPAIGN_KINDS[1 if k % 4 == 1 else 2 if k % 13 == 6 else 3 if k % 9 == 4 else 0]
    return f"{kind}-{sent:%Y-%m-%d}", f"{label} {sent.day}. {_MONTHS_DE[sent.month - 1]} {sent.year}"
