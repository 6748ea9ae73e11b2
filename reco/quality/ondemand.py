"""A quality PNG drawn when first asked for, then kept in the store beside its data."""

from __future__ import annotations

from cygno.reco.quality.common import Store, _join, _write_bytes
from cygno.reco.quality.run import draw_plot
from cygno.reco.quality.trends import draw_trend


def plot_on_request(store: Store, key: str) -> bytes | None:
    """The PNG ``key`` that :func:`run_quality` or :func:`write_trends` left to be drawn
    on request: drawn from the JSON beside it, written to ``key`` and returned; None when
    nothing there draws it.

    A PNG drawn while its data is rewritten must not outlive the new data. The writers
    replace the data, summary last, then delete the folder's PNGs; this side notes the
    summary's etag, draws, writes, and deletes its PNG when the etag has changed since.
    Whichever order the two interleave in, no PNG of old data is left behind (at worst a
    current one is deleted, and drawn again on the next request).
    """
    prefix, _, filename = key.rpartition("/")
    if not filename.endswith(".png"):
        return None
    name = filename.removesuffix(".png")
    for source, draw in (("summaries.json", draw_trend), ("summary.json", draw_plot)):
        source_key = _join(prefix, source)
        if not store.exists(source_key):
            continue
        tag = store.etag(source_key)
        png = draw(store, prefix, name)
        if png is None:
            return None
        _write_bytes(store, key, png)
        if store.etag(source_key) != tag:
            store.delete(key)
        return png
    return None
