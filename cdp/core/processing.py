"""Who may not be profiled. The insight models (profiles) score people, but whether a person restricted
processing or objected to it is consent's knowledge, a layer above. Consent registers a function from
``AppConfig.ready()`` that returns the ids of the profiles frozen now; profiles asks here, importing no app.

    processing.register_frozen(selectors.frozen_profile_ids)
"""

from collections.abc import Callable

_providers: dict[str, Callable[[], set[int]]] = {}


def register_frozen(provider: Callable[[], set[int]]) -> None:
    """Register (or replace, on a reload) a source of frozen profile ids."""
    _providers[f"{provider.__module__}.{provider.__qualname__}"] = provider


def frozen_profile_ids() -> set[int]:
    """The ids of every profile whose processing is frozen now (restriction or objection in force)."""
    frozen: set[int] = set()
    for provider in _providers.values():
        frozen |= provider()
    return frozen
