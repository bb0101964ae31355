"""Shared pytest configuration: hypothesis profiles.

- ``default`` (loaded here): no deadline; property tests set their own example counts
  (the invariants test runs at least 2,000).
- ``ci``: as default, derandomized so a CI run is reproducible.
- ``long``: 100,000 examples per property test:
  ``pytest --hypothesis-profile=long tests/unit/test_invariants.py``.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("default", deadline=None, suppress_health_check=_SLOW_OK)
settings.register_profile(
    "ci", deadline=None, suppress_health_check=_SLOW_OK, derandomize=True, print_blob=True
)
settings.register_profile("long", deadline=None, suppress_health_check=_SLOW_OK, max_examples=100_000)
settings.load_profile("default")
