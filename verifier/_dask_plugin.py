"""The Dask worker plugin of fleet verification (imports ``distributed``: loaded only with a
cluster, so ``chiploc.verifier`` itself never pays for importing Dask)."""

from __future__ import annotations

from distributed import Worker
from distributed.diagnostics.plugin import WorkerPlugin

from chiploc.verifier._dask import _REGISTRIES, load_registry_once, registry_key
from chiploc.verifier._fleet import prepare_zones

__all__ = ["FleetWorkerPlugin"]


class FleetWorkerPlugin(WorkerPlugin):
    """Loads the registry (checking the authority signature), the borders and the zones of
    the registry's chips (:func:`~verifier._fleet.prepare_zones`; unless ``zones=False``:
    then the first batch needing a zone builds it) once per worker, at start-up: no batch
    pays for them.

    Registering a plugin of the same ``name`` again replaces it (a new registry).
    """

    name = "chiploc-fleet"

    def __init__(
        self, registry_json: bytes, authority_public_key: bytes, *, zones: bool = True
    ) -> None:
        self.registry_json = bytes(registry_json)
        self.authority_public_key = bytes(authority_public_key)
        self.key = registry_key(self.registry_json)
        self.zones = zones

    def setup(self, worker: Worker) -> None:
        registry = load_registry_once(self.registry_json, self.authority_public_key)
        from chiploc.solver import country_geometries

        country_geometries()  # the borders, parsed once per process
        if self.zones:
            prepare_zones(registry)

    def teardown(self, worker: Worker) -> None:
        _REGISTRIES.pop(self.key, None)
