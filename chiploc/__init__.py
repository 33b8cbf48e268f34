"""chiploc: prove where an AI chip is, using nothing but the speed of light.

The one import name of the distribution. Its parts are subpackages, layered so that
every import points down (``docs/architecture.md``; ``tests/test_layering.py``):

- :mod:`chiploc.cli`: the ``chiploc`` command, the only place that wires parts together;
- :mod:`chiploc.sim`, :mod:`chiploc.verifier`, :mod:`chiploc.maps`: the simulated world,
  the verification pipeline, the maps;
- :mod:`chiploc.landmarks`, :mod:`chiploc.chip_agent`, :mod:`chiploc.store`: the edges
  (sockets, HTTP, the database);
- :mod:`chiploc.protocol`, :mod:`chiploc.solver`: the sans-I/O cores;
- :mod:`chiploc.common`: errors, units, canonical JSON, config reading.

Importing ``chiploc`` itself loads only the exception root, never a part above it.
"""

from chiploc.common.errors import ChiplocError

__version__ = "0.1.0"

__all__ = ["ChiplocError", "__version__"]
