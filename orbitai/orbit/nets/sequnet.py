"""SEQ-UNET: a 2D U-Net over a short sequence of slices with two bidirectional ConvLSTMs.

Paper 004 (Chung et al., JoVE 2022; model from Suh et al. 2022). What the text fixes: input three
sequential 64 x 64 CT slices; a 2D U-Net (Ronneberger 2015); one bidirectional convolutional LSTM
at the end of the encoder (inter-slice correlation); a second one after the decoder output that
turns the slice sequence into a single segmentation; labels eyeball, extraocular muscle, optic
nerve. Everything else is our reconstruction, documented here:

- Layout: ``(N, S, C, H, W)`` = (batch, slices (3), channels (1), 64, 64) — the slice sequence is
  the recurrent ("time") axis; the 2D layers run on every slice with shared weights.
- U-Net: three levels of two 3x3 conv + BN + ReLU (widths b, 2b, 4b; b = 64 as in U-Net), 2x2 max
  pooling, so a 64 x 64 slice reaches 8 x 8 at the bottleneck; up-sampling by 2x2 transposed conv,
  concatenation with the skip, two 3x3 conv + BN + ReLU (MONAI's BasicUNet blocks). The
  bottleneck bidirectional ConvLSTM (hidden 4b per direction, outputs concatenated = 8b channels)
  takes the place of U-Net's bottom double conv (doubling the width as U-Net's bottom does).
- Output: the second bidirectional ConvLSTM (hidden b per direction) reads the decoder maps of all
  slices; at the centre slice the forward state has seen slices 0..centre and the backward state
  slices centre..S-1, so their concatenation summarises the whole sequence; a 1x1 conv maps it to
  ``out_channels`` logits for the centre slice. Paper config: 4 channels (background, eyeball,
  extraocular muscle, optic nerve).
- One ConvLSTM layer per direction, 3x3 gate convolutions.
"""
from __future__ import annotations

from typing import Any

import torch
from monai.networks.nets.basic_unet import Down, TwoConv, UpCat
from torch import nn

from orbitai.errors import InputError

#: Output channels at paper configuration.
SEQUNET_LABELS: tuple[str, ...] = ("background", "eyeball", "extraocular_muscle", "optic_nerve")


# Neither torch nor MONAI (nor another maintained library) provides a convolutional LSTM, so the
# cell (Shi et al. 2015, without peephole connections) and its bidirectional wrapper are written here.
class ConvLSTMCell(nn.Module):
    """One ConvLSTM step: the four gates from one conv over ``[x, h]``."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.hidden_channels = hidden_channels
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            z = x.new_zeros(x.shape[0], self.hidden_channels, *x.shape[2:])
            state = (z, z)
        h, c = state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


class BiConvLSTM(nn.Module):
    """Bidirectional ConvLSTM over ``(N, S, C, H, W)``; returns ``(N, S, 2*hidden, H, W)`` with the
    forward and backward hidden states concatenated per step."""

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.fwd = ConvLSTMCell(in_channels, hidden_channels, kernel_size)
        self.bwd = ConvLSTMCell(in_channels, hidden_channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps = x.shape[1]
        fwd, bwd = [], []
        state = None
        for t in range(steps):
            state = self.fwd(x[:, t], state)
            fwd.append(state[0])
        state = None
        for t in reversed(range(steps)):
            state = self.bwd(x[:, t], state)
            bwd.append(state[0])
        bwd.reverse()
        return torch.stack([torch.cat([f, b], dim=1) for f, b in zip(fwd, bwd)], dim=1)


class SeqUNet(nn.Module):
    """SEQ-UNET: ``(N, S, C, H, W)`` slice sequence -> ``(N, out_channels, H, W)`` logits of the
    centre slice. H and W must be multiples of 8."""

    n_down = 3

    def __init__(self, in_channels: int = 1, out_channels: int = 4, base_channels: int = 64,
                 n_slices: int = 3) -> None:
        super().__init__()
        if n_slices < 1 or n_slices % 2 == 0:
            raise InputError(f"n_slices must be odd (a centre slice), got {n_slices}.")
        if min(in_channels, out_channels, base_channels) < 1:
            raise InputError("in_channels, out_channels and base_channels must be >= 1.")
        self.in_channels, self.out_channels, self.n_slices = in_channels, out_channels, n_slices
        b = base_channels
        kw: dict[str, Any] = dict(act="RELU", norm="BATCH", bias=False)
        self.enc0 = TwoConv(2, in_channels, b, **kw)
        self.enc1 = Down(2, b, 2 * b, **kw)
        self.enc2 = Down(2, 2 * b, 4 * b, **kw)
        self.pool = nn.MaxPool2d(2)
        self.lstm_bottleneck = BiConvLSTM(4 * b, 4 * b)
        self.up2 = UpCat(2, 8 * b, 4 * b, 4 * b, **kw)
        self.up1 = UpCat(2, 4 * b, 2 * b, 2 * b, **kw)
        self.up0 = UpCat(2, 2 * b, b, b, **kw)
        self.lstm_out = BiConvLSTM(b, b)
        self.head = nn.Conv2d(2 * b, out_channels, kernel_size=1)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ValueError naming the expected layout/sizes if ``x`` does not fit."""
        layout = "(N, slices, C, H, W)"
        if x.ndim != 5:
            hint = " (add the channel axis: x.unsqueeze(2))" if x.ndim == 4 else ""
            raise InputError(f"Expected a 5-D tensor {layout}, got shape {tuple(x.shape)}{hint}.")
        if x.shape[1] != self.n_slices:
            raise InputError(f"Expected {self.n_slices} sequential slices at dim 1 of {layout}, got "
                             f"{x.shape[1]} (shape {tuple(x.shape)}).")
        if x.shape[2] != self.in_channels:
            raise InputError(f"Expected {self.in_channels} channel(s) at dim 2 of {layout}, got "
                             f"{x.shape[2]} (shape {tuple(x.shape)}).")
        m = 2 ** self.n_down
        if any(s % m or s == 0 for s in x.shape[3:]):
            raise InputError(f"Slice size {tuple(x.shape[3:])} not allowed: H and W must be positive "
                             f"multiples of {m} (paper: 64 x 64); resize or pad first.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.check_input(x)
        n, s = x.shape[:2]

        def per_slice(t: torch.Tensor) -> torch.Tensor:  # (N, S, C, H, W) -> (N*S, C, H, W)
            return t.reshape(n * s, *t.shape[2:])

        def as_seq(t: torch.Tensor) -> torch.Tensor:  # (N*S, C, H, W) -> (N, S, C, H, W)
            return t.reshape(n, s, *t.shape[1:])

        e0 = self.enc0(per_slice(x))
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        z = per_slice(self.lstm_bottleneck(as_seq(self.pool(e2))))
        d = self.up0(self.up1(self.up2(z, e2), e1), e0)
        h = self.lstm_out(as_seq(d))[:, s // 2]
        return self.head(h)


def sequnet(in_channels: int = 1, out_channels: int = 4, base_channels: int = 64,
            n_slices: int = 3) -> SeqUNet:
    """SEQ-UNET. Input ``(N, 3, 1, 64, 64)``; output centre-slice logits ``(N, 4, 64, 64)``."""
    return SeqUNet(in_channels, out_channels, base_channels, n_slices)
