"""PMT waveform reconstruction: the digitizer banks of each picture → ``PMT_Events``.

Runs inside the picture loop of `cygno.reco.reconstruct.reconstruct_file` (same chunk
jobs, no second pass over the raw file); `cygno.reco.rootio.ChunkMerger` carries the trees
into the run's file.
"""

from cygno.reco.pmt.event import PMTColumns, PMTReconstructor
from cygno.reco.pmt.params import PMTParams
from cygno.reco.pmt.tree import AVG_TREE, PMT_TREE, PMTStage, PMTTrees, append_pmt

__all__ = [
    "AVG_TREE",
    "PMT_TREE",
    "PMTColumns",
    "PMTParams",
    "PMTReconstructor",
    "PMTStage",
    "PMTTrees",
    "append_pmt",
]
