"""Settings for benchmarks/ingest.py: the product's settings, plus a bare view to compare the tracking API with.

The bare view lives only here (benchmarks/ingest_urls.py), never in the product."""

from cdp.settings import *  # noqa: F403

ROOT_URLCONF = "benchmarks.ingest_urls"
