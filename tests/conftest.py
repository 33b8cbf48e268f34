"""Suite-wide settings. Area fixtures live in each tests/<area>/conftest.py."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Bounded, repeatable property runs in the suite; longer runs are opt-in.
settings.register_profile(
    "ci",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("long", max_examples=5000, deadline=None)
settings.load_profile("ci")
