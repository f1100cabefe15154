"""The next best action: which of the offers a person qualifies for the personalization API proposes, and why
(see docs/architecture.md, "Next best action").

Rules first, as before: an offer is eligible when it is enabled and valid now, the person is in its segment (an
open membership) and granted its consent purpose; a restricted person gets nothing (the caller,
``personalization._answer``, stops before ranking). An offer with churn-risk bounds also needs the person's churn
risk within them. Insights are read only while the personalization purpose is granted, so without it such an
offer is not eligible and no offer is scored.

Then a score per eligible offer: the expected value in EUR of proposing it to this person, from their insights
(computed traits: ``profiles.services.computed.INSIGHT_TRAITS`` and the stock order traits) by the offer's goal:

- retention: the value at risk, churn_risk × predicted_clv_12m (× the offer's expected value when the person has
  no predicted value);
- cross-sell / upsell: the relevance of the best promoted product among the person's recommendations
  (``profiles.selectors.recommendations_for``: its score over the top recommendation's, so the top one is 1)
  × the chance they stay to buy (1 − churn_risk; 1 when unknown) × the offer's expected value (the product's
  price without one);
- win-back: how long the person has lapsed (days since the last order over ``WIN_BACK_DAYS``, at most 1) × the
  offer's expected value (the person's average order value without one); only for people who ordered before;
- acquisition: the offer's expected value, for people who have not ordered yet;
- none: not scored.

Scored offers (a score above 0) come first, the highest score first; the others follow in priority order (the
lowest number, then the oldest), which also breaks ties between equal scores. With no goals that is exactly the
priority order the API had before.

The API skips the recommendations (three queries) when no eligible cross-sell offer could win even with its
products ranked first; the preview asks for the complete ranking (``complete``).

Each ranked offer has two reasons: ``detail`` with the person's numbers ("churn risk 0.82 × predicted 12-month
value 310 EUR = 254 EUR at risk"), for the preview in the UI, and ``summary`` without them, which the
personalization API returns: it shares no insight value that is not on its allow-list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

# The computed traits the scores read (one query, with the shared computed traits; see personalization).
NBA_TRAITS = ("churn_risk", "predicted_clv_12m", "days_since_last_order", "average_order_value", "order_count")
# A customer this many days without an order is fully lapsed for a win-back offer.
WIN_BACK_DAYS = 365
# How many recommendations a cross-sell offer's products are looked for in.
RECOMMENDATIONS_SCORED = 10


class RankedOffer(Protocol):  # what nba needs of an offer (personalization.CachedOffer)
    id: int
    name: str
    priority: int
    segment_id: int
    purpose_key: str
    goal: str
    expected_value: float | None
    product_ids: tuple[str, ...]
    min_churn_risk: float | None
    max_churn_risk: float | None

    def valid_at(self, when: datetime) -> bool: ...


@dataclass
class Ranked:
    """One offer for one person: its score (EUR; None when its goal does not score it), why, or why not."""

    offer: RankedOffer
    score: float | None = None
    detail: str = ""
    summary: str = ""
    excluded: str = ""  # why the offer is not eligible; empty when it is

    @property
    def eligible(self) -> bool:
        return not self.excluded

    @property
    def scored(self) -> bool:
        return self.score is not None and self.score > 0


@dataclass
class NextBestAction:
    """The choice (or None), the eligible offers best first, the others with why not, and whether insights were
    read (the personalization purpose granted)."""

    choice: Ranked | None = None
    ranked: list[Ranked] = field(default_factory=list)
    excluded: list[Ranked] = field(default_factory=list)
    insights_read: bool = False


def _eur(value: float) -> str:
    return f"{value:,.0f} EUR" if abs(value) >= 100 else f"{value:,.2f} EUR"


def _excluded(offer: RankedOffer, *, member_of: set[int], granted: set[str], now: datetime,
              insights: Mapping | None) -> str:
    if not offer.valid_at(now):
        return "not valid now"
    if offer.segment_id not in member_of:
        return "not in its segment"
    if offer.purpose_key not in granted:
        return f"consent purpose {offer.purpose_key} not granted"
    if offer.min_churn_risk is None and offer.max_churn_risk is None:
        return ""
    if insights is None:
        return "has churn-risk bounds; insights are read only with personalization granted"
    risk = insights.get("churn_risk")
    if risk is None:
        return "has churn-risk bounds; the person has no churn risk yet"
    if offer.min_churn_risk is not None and risk < offer.min_churn_risk:
        return f"churn risk {risk:.2f} below its minimum {offer.min_churn_risk:.2f}"
    if offer.max_churn_risk is not None and risk > offer.max_churn_risk:
        return f"churn risk {risk:.2f} above its maximum {offer.max_churn_risk:.2f}"
    return ""


def _priority(ranked: Ranked, why: str = "") -> Ranked:
    ranked.score = None
    ranked.detail = f"priority {ranked.offer.priority}" + (f" ({why})" if why else "")
    ranked.summary = f"priority {ranked.offer.priority}"
    return ranked


def _retention(ranked: Ranked, insights: Mapping) -> Ranked:
    offer, risk = ranked.offer, insights.get("churn_risk")
    if risk is None:
        return _priority(ranked, "no churn risk for the person yet")
    clv = insights.get("predicted_clv_12m")
    if clv is not None:
        ranked.score = risk * clv
        ranked.detail = f"churn risk {risk:.2f} × predicted 12-month value {_eur(clv)} = {_eur(ranked.score)} at risk"
    elif offer.expected_value is not None:
        ranked.score = risk * offer.expected_value
        ranked.detail = (f"churn risk {risk:.2f} × the offer's value {_eur(offer.expected_value)} = "
                         f"{_eur(ranked.score)} (no predicted value for the person)")
    else:
        return _priority(ranked, "no predicted value for the person and no value on the offer")
    ranked.summary = "retention: the value at risk (churn risk × predicted 12-month value)"
    return ranked


def _cross_sell(ranked: Ranked, insights: Mapping, recommendations: list[dict]) -> Ranked:
    offer = ranked.offer
    if not recommendations:
        return _priority(ranked, "no recommendations for the person")
    top = max(float(rec.get("score") or 0) for rec in recommendations)
    promoted = set(offer.product_ids)
    found = [(rank, rec) for rank, rec in enumerate(recommendations, 1) if str(rec["product_id"]) in promoted]
    if not found:
        return _priority(ranked, f"none of its products is among the person's {len(recommendations)} "
                                 "recommendations")
    rank, rec = max(found, key=lambda item: (float(item[1].get("score") or 0), -item[0]))
    relevance = float(rec.get("score") or 0) / top if top > 0 else 1.0 / rank
    value = offer.expected_value if offer.expected_value is not None else rec.get("price")
    name = rec.get("name") or rec["product_id"]
    if value is None:
        return _priority(ranked, f"recommended: {name} (#{rank}), but no value on the offer or price")
    risk = insights.get("churn_risk")
    stays = 1 - risk if risk is not None else 1.0
    ranked.score = relevance * stays * value
    ranked.detail = (f"recommended: {name} (#{rank}, relevance {relevance:.2f})"
                     + (f" × stays {stays:.2f}" if risk is not None else "")
                     + f" × {'the offer' if offer.expected_value is not None else 'price'} {_eur(value)}"
                     + f" = {_eur(ranked.score)}")
    ranked.summary = f"recommended: {name}"
    return ranked


def _win_back(ranked: Ranked, insights: Mapping) -> Ranked:
    offer, days = ranked.offer, insights.get("days_since_last_order")
    if days is None:
        return _priority(ranked, "no order yet: nothing to win back")
    lapse = min(days / WIN_BACK_DAYS, 1.0)
    value = offer.expected_value if offer.expected_value is not None else insights.get("average_order_value")
    if value is None:
        return _priority(ranked, "no value on the offer and no average order value")
    ranked.score = lapse * value
    ranked.detail = (f"no order for {days} days ({lapse:.2f} of {WIN_BACK_DAYS}) × "
                     f"{'the offer' if offer.expected_value is not None else 'average order'} {_eur(value)} = "
                     f"{_eur(ranked.score)}")
    ranked.summary = "win-back: lapsed since the last order"
    return ranked


def _acquisition(ranked: Ranked, insights: Mapping) -> Ranked:
    offer, orders = ranked.offer, insights.get("order_count") or 0
    if orders > 0:
        return _priority(ranked, f"already a customer: {orders:g} orders")
    if offer.expected_value is None:
        return _priority(ranked, "no value on the offer")
    ranked.score = offer.expected_value
    ranked.detail = f"no order yet × the offer's value {_eur(offer.expected_value)}"
    ranked.summary = "acquisition: no order yet"
    return ranked


def _cross_sell_bound(ranked: Ranked, insights: Mapping) -> float | None:
    """The most a cross-sell offer can score (its products ranked first), or None when only its products' prices
    can tell."""
    if ranked.offer.expected_value is None:
        return None
    risk = insights.get("churn_risk")
    return (1 - risk if risk is not None else 1.0) * ranked.offer.expected_value


_SCORERS = {"retention": _retention, "win_back": _win_back, "acquisition": _acquisition}


def nba_rank(*, offers: Iterable[RankedOffer], member_of: set[int], granted: set[str], now: datetime,
             insights: Mapping | None, recommendations: Callable[[], list[dict]] | None = None,
             complete: bool = True) -> NextBestAction:
    """Rank ``offers`` (in priority order) for a person: ``member_of`` the ids of their open segments, ``granted``
    the keys of the purposes they granted, ``insights`` their NBA_TRAITS values by key (None: personalization not
    granted, nothing is scored), ``recommendations`` a function that returns their recommendations, best first
    (called only when an eligible cross-sell offer needs them). See the module.

    With ``complete`` False (the API) the recommendations are not computed when no cross-sell offer can beat the
    best other offer even with its products ranked first: the choice is the same, and those cross-sell offers
    follow by priority, unscored."""
    answer = NextBestAction(insights_read=insights is not None)
    eligible: list[Ranked] = []
    for offer in offers:
        ranked = Ranked(offer=offer)
        ranked.excluded = _excluded(offer, member_of=member_of, granted=granted, now=now, insights=insights)
        (eligible if ranked.eligible else answer.excluded).append(ranked)
    cross_sell: list[Ranked] = []
    for ranked in eligible:
        goal = ranked.offer.goal or "none"
        if goal == "none":
            _priority(ranked)
        elif insights is None:
            _priority(ranked, "not scored: insights are read only with personalization granted")
        elif goal == "cross_sell":
            cross_sell.append(ranked)
        elif goal in _SCORERS:
            _SCORERS[goal](ranked, insights)
        else:
            _priority(ranked, f"unknown goal {goal}")
    if cross_sell:
        best = max((r.score for r in eligible if r.scored), default=0.0)
        bounds = [_cross_sell_bound(ranked, insights) for ranked in cross_sell]
        if not complete and all(bound is not None and bound < best for bound in bounds):
            for ranked, bound in zip(cross_sell, bounds, strict=True):
                _priority(ranked, f"not scored: at most {_eur(bound)}, below the best offer's {_eur(best)}")
        else:
            recs = recommendations()[:RECOMMENDATIONS_SCORED] if recommendations is not None else []
            for ranked in cross_sell:
                _cross_sell(ranked, insights, recs)
    # Stable: offers arrive in priority order (then the oldest), which breaks every tie.
    answer.ranked = sorted(eligible, key=lambda r: (0, -r.score) if r.scored else (1, 0))
    answer.choice = answer.ranked[0] if answer.ranked else None
    return answer
