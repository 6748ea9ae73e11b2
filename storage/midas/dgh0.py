"""Digitizer banks: the DGH0 header (three layouts) and per-board waveforms from DIG0.

Layout (1): [nboards], per board [model, nsamples, nchannels, ntriggers, vertical
resolution, sampling, offsets[nch], TTT[ntrig], SIC[ntrig] (V1742 only)];
(2) as (1) with TTT1[ntrig] after TTT; (3) a leading version word 1000, then as (2).
(3) is told by its first word, (1) from (2) by the bank length.
DIG0 holds u16 samples board by board, trigger by trigger, channel by channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

VERSION_WORD = 1000
V1742 = 1742


@dataclass
class DigitizerBoard:
    model: int
    nsamples: int
    nchannels: int
    ntriggers: int
    vertical_resolution: int
    sampling: int
    offsets: np.ndarray
    ttt: np.ndarray
    ttt1: np.ndarray | None = None
    sic: np.ndarray | None = None
    waveforms: np.ndarray | None = field(default=None, repr=False)  # (ntrig, nch, nsamples)


def _parse(words: np.ndarray, start: int, with_ttt1: bool) -> tuple[list[DigitizerBoard], int]:
    pos = start
    nboards = int(words[pos])
    pos += 1
    boards = []
    for _ in range(nboards):
        if pos + 6 > len(words):
            raise ValueError("DGH0 ends inside a board header")
        model, nsamples, nch, ntrig, vres, sampling = (int(w) for w in words[pos : pos + 6])
        pos += 6
        need = nch + ntrig * (1 + int(with_ttt1) + int(model == V1742))
        if pos + need > len(words):
            raise ValueError("DGH0 ends inside a board's offsets/time tags")
        offsets = words[pos : pos + nch]
        pos += nch
        ttt = words[pos : pos + ntrig]
        pos += ntrig
        ttt1 = None
        if with_ttt1:
            ttt1 = words[pos : pos + ntrig]
            pos += ntrig
        sic = None
        if model == V1742:
            sic = words[pos : pos + ntrig]
            pos += ntrig
        boards.append(
            DigitizerBoard(model, nsamples, nch, ntrig, vres, sampling, offsets, ttt, ttt1, sic)
        )
    return boards, pos


def dgh0_layout(words: np.ndarray) -> int:
    """1, 2 or 3 (see module docstring)."""
    if len(words) and int(words[0]) == VERSION_WORD:
        return 3
    try:
        _, used = _parse(words, 0, with_ttt1=False)
        if used == len(words):
            return 1
    except ValueError:
        pass
    return 2


def decode_dgh0(bank: Any) -> list[DigitizerBoard]:
    """Board headers from a DGH0 bank (a Bank or its u32 array)."""
    words = np.asarray(getattr(bank, "data", bank)).astype("<u4", copy=False)
    layout = dgh0_layout(words)
    start = 1 if layout == 3 else 0
    boards, used = _parse(words, start, with_ttt1=layout >= 2)
    if used != len(words):
        raise ValueError(f"DGH0 has {len(words)} words, layout {layout} explains {used}")
    return boards


def encode_dgh0(boards: list[DigitizerBoard], layout: int = 3) -> np.ndarray:
    """The DGH0 u32 words for `boards` in layout 1, 2 or 3 (for writers and tests)."""
    words: list[int] = [VERSION_WORD] if layout == 3 else []
    words.append(len(boards))
    for b in boards:
        words += [b.model, b.nsamples, b.nchannels, b.ntriggers, b.vertical_resolution, b.sampling]
        words += [int(x) for x in b.offsets] + [int(x) for x in b.ttt]
        if layout >= 2:
            ttt1 = b.ttt1 if b.ttt1 is not None else np.zeros(b.ntriggers)
            words += [int(x) for x in ttt1]
        if b.model == V1742:
            sic = b.sic if b.sic is not None else np.zeros(b.ntriggers)
            words += [int(x) for x in sic]
    return np.array(words, dtype="<u4")


def waveforms(event: Any) -> list[DigitizerBoard]:
    """Per-board waveforms (ntrig, nch, nsamples) u16 views on the event's DIG0 bank."""
    boards = decode_dgh0(event.banks["DGH0"])
    samples = event.banks["DIG0"].data
    pos = 0
    for b in boards:
        n = b.ntriggers * b.nchannels * b.nsamples
        if pos + n > samples.size:
            raise ValueError(f"DIG0 has {samples.size} samples, DGH0 describes more")
        b.waveforms = samples[pos : pos + n].reshape(b.ntriggers, b.nchannels, b.nsamples)
        pos += n
    if pos != samples.size:
        raise ValueError(f"DIG0 has {samples.size} samples, DGH0 describes {pos}")
    return boards
