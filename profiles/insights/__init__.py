"""Insights: models that interpret the data (churn risk, predicted lifetime value, product recommendations,
sentiment). The modules here are pure computation over arrays and texts; profiles.services.insights reads the
data, runs them and writes their outputs as insight computed traits (profiles.services.computed.INSIGHT_TRAITS)."""
