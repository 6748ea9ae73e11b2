"""Data-quality monitoring of one reconstructed run, and trends across runs.

From a reco ROOT file (tree ``Events``, branches of docs/reconstruction.md) and optionally
the pedestal maps it was made with, this module builds the run's monitoring histograms
(``hist``), fits the ⁵⁵Fe light yield, compares every histogram with a reference run of
the same kind (χ²/ndf and Kolmogorov distance, reference overlaid on the plot), gives
the run a flag ``good`` / ``warning`` / ``bad`` with its reasons, and draws trend plots
(light yield, clusters per picture, noise vs run number) from a list of run summaries.
Every PNG is drawn from JSON written beside it, so it can be drawn later, when first
asked for (:func:`plot_on_request`), instead of delaying the flag.

A plain library: no Prefect. Functions take and return arrays, ``hist.Hist`` objects,
dicts and PNG bytes; :func:`run_quality` and :func:`write_trends` write through any
object with the ``ObjectStore`` methods ``publish(key)`` (a context manager giving a
writable binary file), ``open(key, mode)``, ``exists(key)``, ``list(prefix)``,
``delete(key)`` and ``etag(key)`` —
``cygno.storage.objectstore.ObjectStore`` (``file://`` for plain folders).

Histogram JSON schema ``cygno.hist/1`` (one object per file, ``<name>.json``)::

    {"schema": "cygno.hist/1",
     "name": "sc_integral", "title": "Cluster integral spectrum",
     "axes": [{"name": "integral", "label": "cluster integral [ADC]",
               "edges": [e0, …, eN], "log": true}, …],   # 1 or 2 axes
     "counts": [c0, …, cN-1],       # nested [x][y] for 2D; flow bins excluded
     "underflow": u, "overflow": o, # 1D only: entries outside the edges
     "entries": n}                  # all fills, flow included

Counts are unweighted fills, so their Poisson variances equal the counts.

The package splits that work by job: ``common`` (store protocol, JSON, configuration),
``histograms`` (reading, histograms), ``lightyield`` (⁵⁵Fe fit, summary), ``compare``
(reference comparison, flags), ``plots``, ``run`` (one run end to end), ``trends`` and
``ondemand`` (a PNG drawn when first asked for).
Every public name is importable from ``cygno.reco.quality`` itself.
"""

from cygno.reco.quality.common import (
    FLAGS,
    HIST_SCHEMA,
    Flag,
    QualityConfig,
    Store,
    Thresholds,
)
from cygno.reco.quality.compare import (
    Comparison,
    chi2_ndf,
    compare_histograms,
    flag_run,
    ks_distance,
)
from cygno.reco.quality.histograms import (
    PedestalMonitor,
    PMTArrays,
    RecoArrays,
    build_histograms,
    histogram_from_json,
    histogram_to_json,
    pedestal_monitor,
    read_reco,
)
from cygno.reco.quality.lightyield import (
    LightYield,
    fe55_from_logbook,
    fit_light_yield,
    spot_integrals,
    summarize,
)
from cygno.reco.quality.ondemand import (
    plot_on_request,
)
from cygno.reco.quality.plots import (
    plot_cmos_trace,
    plot_histogram,
)
from cygno.reco.quality.run import (
    QualityReport,
    Reference,
    draw_plot,
    load_reference,
    report_markdown,
    run_quality,
)
from cygno.reco.quality.trends import (
    TREND_COLUMNS,
    TREND_PLOTS,
    draw_trend,
    plot_trend,
    trend_prefix,
    trend_table_html,
    write_trends,
)

__all__ = [
    "FLAGS",
    "HIST_SCHEMA",
    "TREND_COLUMNS",
    "TREND_PLOTS",
    "Comparison",
    "Flag",
    "LightYield",
    "PMTArrays",
    "PedestalMonitor",
    "QualityConfig",
    "QualityReport",
    "RecoArrays",
    "Reference",
    "Store",
    "Thresholds",
    "build_histograms",
    "chi2_ndf",
    "compare_histograms",
    "draw_plot",
    "draw_trend",
    "fe55_from_logbook",
    "fit_light_yield",
    "flag_run",
    "histogram_from_json",
    "histogram_to_json",
    "ks_distance",
    "load_reference",
    "pedestal_monitor",
    "plot_cmos_trace",
    "plot_histogram",
    "plot_on_request",
    "plot_trend",
    "read_reco",
    "report_markdown",
    "run_quality",
    "spot_integrals",
    "summarize",
    "trend_prefix",
    "trend_table_html",
    "write_trends",
]
