"""The Rucio-style audit: two catalog snapshots around one storage listing."""

from __future__ import annotations

import pytest

from cygno.storage.audit import action_budget, audit


def test_dark_lost_and_in_flight():
    before = {"a", "b", "c", "gone-during"}
    listing = {"a", "c", "d", "new-during"}
    after = {"a", "b", "c", "new-during"}
    result = audit(before, listing, after)
    assert result.dark == ("d",)  # storage only, catalog never knew
    assert result.lost == ("b",)  # catalog knew throughout, storage lacks it
    assert result.consistent == ("a", "c")
    assert result.in_flight == ("gone-during", "new-during")  # changed while listing


def test_a_file_registered_during_the_listing_is_not_dark():
    assert audit(set(), {"x"}, {"x"}).dark == ()


def test_budget():
    assert action_budget(1000, 0.05) == 50
    assert action_budget(3, 0.05) == 1  # one routine repair is always allowed
    with pytest.raises(ValueError):
        action_budget(10, 1.5)
