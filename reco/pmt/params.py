"""PMT reconstruction parameters: the ``[pmt]`` section of a reco configuration.

Defaults follow production's PMT settings (Reco_v2.1.0 ``configFile_LNGS.txt`` and
``ReadMe_PMT.md``): peaks above ``height_rms`` × the filtered waveform's noise, a
prominence of a quarter of the waveform's maximum, at least ``min_width`` samples wide,
a 10-sample moving average, time over threshold at 5 × noise with 10 samples to open
and 5 to close. Channels are the digitizer inputs the four PMTs are cabled to, the same
on both boards.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PMTParams:
    enabled: bool = True
    channels: tuple[int, ...] = (0, 1, 2, 3)
    resample: int = 10  # moving-average window, samples (1 = no filter)
    height_rms: float = 5.0  # peak height threshold, in units of the filtered noise
    prominence_fraction: float = 0.25  # minimum prominence / waveform maximum
    min_width: float = 5.0  # minimum width at half prominence, samples
    baseline_samples_fast: int = 100  # pre-trigger samples for baseline and noise
    baseline_samples_slow: int = 400
    tot_rms: float = 5.0  # time-over-threshold level, in units of the filtered noise
    tot_open: int = 10  # consecutive samples above the level that open the signal
    tot_close: int = 5  # consecutive samples below it that close the signal
    global_exposure_start_ms: float = 180.0  # triggers before this are outside the exposure
    drs4_spike_adc: float = 30.0  # DRS4 spike size removed when the board did not correct
    drs4_table: str = ""  # .npz with per-channel ``cell`` and ``sample`` offsets; "" = none
