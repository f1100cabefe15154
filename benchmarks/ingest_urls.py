"""The product's URLs plus /bench/bare: a Django view that only parses the JSON body (the baseline that
benchmarks/ingest.py compares the tracking API with; it passes through the same middleware)."""

import json

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt


@csrf_exempt
def bare(request):
    json.loads(request.body)
    return HttpResponse(b'{"success":true}', content_type="application/json")


urlpatterns = [
    path("bench/bare", bare),
    path("", include("cdp.urls")),
]
