"""The runner of each kind of insight model: kind -> a function that trains and scores in full and returns its
InsightModel (see profiles.services.insights). Each lives in its own module, imported when it runs."""

from importlib import import_module

from profiles.models import InsightModel

_MODULES = {
    InsightModel.Kind.CHURN: "profiles.services.insights_churn",
    InsightModel.Kind.CLV: "profiles.services.insights_clv",
    InsightModel.Kind.RECOMMENDATIONS: "profiles.services.insights_recommendations",
}


def _runner(kind: str):
    def run():
        return import_module(_MODULES[kind]).run()

    return run


RUNNERS = {kind: _runner(kind) for kind in _MODULES}
