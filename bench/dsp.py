"""Small DSP in plain torch (no torchaudio): mel filterbank and log-mel spectrogram.

Batched and device-agnostic, so encoders and augmentations can run on the GPU.
"""

from __future__ import annotations

import torch


def hz_to_mel(f: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(f, dtype=torch.float64) / 700.0)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]``, each normalised to unit area (Slaney-style)."""
    fmax = fmax if fmax is not None else sample_rate / 2
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2, dtype=torch.float64))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None, :] - lower) / (centre - lower)
    down = (upper - freqs[None, :]) / (upper - centre)
    fb = torch.clamp(torch.minimum(up, down), min=0.0)
    fb = fb * (2.0 / (upper - lower))
    return fb.to(torch.float32)


def log_mel(
    x: torch.Tensor,
    sample_rate: int,
    n_fft: int = 1024,
    hop: int = 256,
    n_mels: int = 64,
    fmin: float = 0.0,
    fmax: float | None = None,
    eps: float = 1e-6,
    filterbank: torch.Tensor | None = None,
) -> torch.Tensor:
    """Log-mel power spectrogram of ``x [B, T]`` -> ``[B, n_mels, frames]``."""
    window = torch.hann_window(n_fft, device=x.device, dtype=x.dtype)
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=window, center=True, return_complex=True)
    power = spec.real**2 + spec.imag**2
    fb = filterbank if filterbank is not None else mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
    mel = torch.matmul(fb.to(x.device, x.dtype), power)
    return torch.log(mel + eps)

