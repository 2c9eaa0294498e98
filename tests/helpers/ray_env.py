"""The service's Ray settings (sweep/defaults.py, RAY_SYSTEM_CONFIG) as the environment variables
Ray reads, for the Rays the tests start themselves; and an environment without them, for the
tests that check the service's own Ray settings (docs/platform.md, "Ray Tune")."""

from __future__ import annotations

from collections.abc import Mapping

from sweep.defaults import RAY_SYSTEM_CONFIG

# Ray reads RAY_<setting>; a boolean as 1 or 0
RAY_SETTINGS_ENV = {
    f"RAY_{key}": str(int(value)) if isinstance(value, bool) else str(value) for key, value in RAY_SYSTEM_CONFIG.items()
}


def without_ray_settings(env: Mapping[str, str]) -> dict[str, str]:
    """`env` less the variables above: a Ray started with it has Ray's defaults, unless told otherwise."""
    return {key: value for key, value in env.items() if key not in RAY_SETTINGS_ENV}
