"""Insights: models that interpret the data (churn risk, predicted lifetime value, product recommendations,
sentiment). churn, clv, recommendations and sentiment are pure computation over arrays and texts; features reads
the measures they learn from, and explain recomputes one profile's reasons for the 360° page and the API.
profiles.services.insights runs the models and writes their outputs as insight computed traits
(profiles.services.computed.INSIGHT_TRAITS)."""
