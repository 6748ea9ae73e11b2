"""Branch types for uproot's ``mktree`` as awkward type objects.

A jagged record written as a datashape string (``"var * {a: float32, …}"``) is parsed
by awkward's grammar on every file; the type object costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping

import awkward as ak


def list_of_records(fields: Mapping[str, str], prefix: str = "") -> ak.types.Type:
    """``var * {name: type, …}`` of ``fields`` (branch name → dtype), the branch names
    without ``prefix`` (uproot puts it back as ``<record>_<name>``)."""
    record = ak.types.RecordType(
        [ak.types.NumpyType(t) for t in fields.values()], [n[len(prefix) :] for n in fields]
    )
    return ak.types.ListType(record)
