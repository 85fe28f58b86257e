"""The beat model: a classifier of each lead's median beat and of the rhythm.

The 10-s signal models (:class:`~ecgscan.train.classifier.SignalResNet`) pool over time, so
where a feature lies within the beat (an ST level 80 ms after the QRS, a Q wave's width) is
something they must learn from scratch. This model reads instead the encoding of
:func:`ecgscan.classify._signal.encode_beats`: one median beat per lead (a fixed window around
the QRS, so each position is a fixed time after it), the leads' masks, and six rate and
regularity measures. Convolutions over the beat are flattened, not pooled, so the heads see
every position. It is small and fast (no recurrence, 70-sample inputs at 100 Hz) and, reading
another view of the record, a diverse member for the ensemble.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from ..data.labels import CHALLENGE_LABELS
from ..data.record import LEADS
from ..errors import EcgscanError
from ._common import SUPERCLASSES

__all__ = ["BeatNet", "build_beat_net"]

_RHYTHM = 6  # values in the encoding's last channel (RHYTHM_FEATURES)


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
        nn.BatchNorm1d(c_out),
        nn.ReLU(inplace=True),
    )


class BeatNet(nn.Module):
    """Convolutions over ``2 × 12`` beat channels, flattened, with the rhythm, into the heads.

    Parameters
    ----------
    samples : int
        Length of the median beats (:func:`~ecgscan.classify._signal.beat_samples`).
    width : int
        Channels of the first convolutions (doubled after the first pooling).
    hidden : int
        Units of the hidden layer before the heads.
    dropout : float
        Dropout before the heads.
    heads : mapping of str to int, optional
        Output groups (default: the 11 Challenge labels and the 5 superclasses).
    activation : {'sigmoid'}
        Scores are logits.
    """

    def __init__(
        self,
        *,
        samples: int = 70,
        width: int = 64,
        hidden: int = 256,
        dropout: float = 0.4,
        heads: Mapping[str, int] | None = None,
        activation: str = "sigmoid",
        encoding: str = "beats",
    ) -> None:
        super().__init__()
        if activation != "sigmoid" or encoding != "beats":
            raise EcgscanError(
                f"BeatNet needs activation='sigmoid' and encoding='beats', got "
                f"{activation!r} and {encoding!r}"
            )
        if samples < 8 or width < 1 or hidden < 1 or not 0 <= dropout < 1:
            raise EcgscanError(
                "BeatNet needs samples >= 8, width >= 1, hidden >= 1 and 0 <= dropout < 1, got "
                f"{samples}, {width}, {hidden}, {dropout}"
            )
        self.heads = dict(
            heads or {"challenge": len(CHALLENGE_LABELS), "superclass": len(SUPERCLASSES)}
        )
        self.activation = activation
        self.samples = samples
        w = width
        self.body = nn.Sequential(
            _conv(2 * len(LEADS), w, 7),
            _conv(w, w, 5),
            nn.MaxPool1d(2),
            _conv(w, 2 * w, 5),
            _conv(2 * w, 2 * w, 3),
            nn.MaxPool1d(2),
            _conv(2 * w, 2 * w, 3),
        )
        flat = 2 * w * (samples // 2 // 2)
        self.hidden = nn.Sequential(
            nn.Linear(flat + _RHYTHM, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout)
        )
        self.head = nn.ModuleDict({k: nn.Linear(hidden, n) for k, n in self.heads.items()})

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        beats, rhythm = x[:, : 2 * len(LEADS)], x[:, -1, :_RHYTHM]
        h = torch.cat([self.body(beats).flatten(1), rhythm], dim=1)
        h = self.hidden(h)
        return {k: head(h) for k, head in self.head.items()}

    def probabilities(self, scores: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: torch.sigmoid(v) for k, v in scores.items()}


def build_beat_net(**kwargs: Any) -> BeatNet:
    """Factory registered as ``'signal-beats'`` (see :mod:`ecgscan.classify._registry`)."""
    return BeatNet(**kwargs)
