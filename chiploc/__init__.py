"""chiploc: prove where an AI chip is, using nothing but the speed of light.

This package holds what every other part shares and depends on nothing of
theirs: the exception tree (:mod:`chiploc.errors`) and physical constants
(:mod:`chiploc.units`). The command line (:mod:`chiploc.cli`) is the one place
that wires the other packages together; it is imported only by the
``chiploc`` entry point.
"""

from chiploc.errors import ChiplocError

__version__ = "0.1.0"

__all__ = ["ChiplocError", "__version__"]
