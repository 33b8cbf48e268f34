"""The ground floor: what every part of chiploc shares, depending on nothing of theirs.

- :mod:`chiploc.common.errors`: the one exception tree;
- :mod:`chiploc.common.units`: physical constants and unit conversions;
- :mod:`chiploc.common.canonical`: the canonical JSON that registries, certificates and
  the audit chain sign or hash;
- :mod:`chiploc.common.config`: the TOML config-table reader.

Every other subpackage may import these; these import no other subpackage of chiploc
(``tests/test_layering.py``).
"""
