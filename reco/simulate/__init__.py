"""Realistic simulated CYGNO data with truth: pictures, MIDAS runs, uploads and logbook rows.

``simulate_picture`` makes one raw frame (pure numpy); ``simulate_run`` writes a whole run
as the DAQ does (see ``run``); ``simulate_and_upload`` publishes runs to the object store
and the DAQ logbook (see ``upload``).
"""

from cygno.reco.simulate.camera import Camera, make_camera
from cygno.reco.simulate.picture import KINDS, make_tracks, simulate_picture, spark_threshold
from cygno.reco.simulate.run import PictureTruth, RunTruth, simulate_run, truth_name
from cygno.reco.simulate.tracks import (
    LIGHT_YIELD,
    PIXEL_MM,
    Geometry,
    Track,
    TruthTrack,
    cosmic_muon,
    electron_recoil,
    fe55_spot,
    nuclear_recoil,
)
from cygno.reco.simulate.upload import SimulatedRun, simulate_and_upload, simulate_one, truth_key

__all__ = [
    "KINDS",
    "LIGHT_YIELD",
    "PIXEL_MM",
    "Camera",
    "Geometry",
    "PictureTruth",
    "RunTruth",
    "SimulatedRun",
    "Track",
    "TruthTrack",
    "cosmic_muon",
    "electron_recoil",
    "fe55_spot",
    "make_camera",
    "make_tracks",
    "nuclear_recoil",
    "simulate_and_upload",
    "simulate_one",
    "simulate_picture",
    "simulate_run",
    "spark_threshold",
    "truth_key",
    "truth_name",
]
