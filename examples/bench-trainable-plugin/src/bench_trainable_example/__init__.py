"""Example third-party trainable encoder: a log-mel CNN trained with VICReg.

torch is imported inside the methods, never at module level, so ``bench
--help`` stays fast for everyone who has this plugin installed.
"""

from bench import hookimpl
from bench.encoder import Recipe, TrainableEncoder
from bench.errors import PluginError


def _network(width: int):
    """The backbone (log-mel -> embedding) and the VICReg expander, in one module whose forward trains both."""
    from torch import nn

    class Network(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = nn.Sequential(
                nn.Conv1d(40, width, 3, padding=1), nn.BatchNorm1d(width), nn.ReLU(),
                nn.Conv1d(width, width, 3, padding=1), nn.BatchNorm1d(width), nn.ReLU(),
            )
            self.expander = nn.Sequential(nn.Linear(width, 2 * width), nn.ReLU(), nn.Linear(2 * width, 2 * width))

        def embed(self, features):
            return self.backbone(features).mean(dim=-1)

        def forward(self, features):  # the training forward (through the DDP wrapper: gradients sync)
            return self.expander(self.embed(features))

    return Network()


class VICRegEncoder(TrainableEncoder):
    """Log-mel frames -> 2 conv layers -> mean over time -> ``width``-d embedding."""

    name = "example_vicreg"
    sample_rate = 8000
    window = 8000  # 1 s windows

    def __init__(self, width: int = 32, seed: int = 0, **options):
        super().__init__(width=width, seed=seed, **options)
        if options:
            raise PluginError(f"encoder 'example_vicreg': unknown option(s) {sorted(options)}; options: width, seed")
        import torch

        self.dim = int(width)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self.module = _network(self.dim)
        self._mel = None

    def _features(self, waveforms):
        """[B, T] -> log-mel [B, 40, frames] (a fixed triangular filterbank over the STFT)."""
        import torch

        if self._mel is None or self._mel.device != waveforms.device:
            freqs = torch.linspace(0, self.sample_rate / 2, 257, device=waveforms.device)
            mel = 2595 * torch.log10(1 + freqs / 700)
            edges = torch.linspace(0, float(mel[-1]), 42, device=waveforms.device)
            lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
            self._mel = torch.clamp(torch.minimum((mel - lo) / (mid - lo), (hi - mel) / (hi - mid)), min=0)
        spec = torch.stft(waveforms, n_fft=512, hop_length=256, return_complex=True,
                          window=torch.hann_window(512, device=waveforms.device)).abs() ** 2
        return torch.log(self._mel @ spec + 1e-6)

    def embed(self, waveforms):
        return self.module.embed(self._features(waveforms))

    # -- the trainable contract ----------------------------------------------------------
    def recipe(self) -> Recipe:
        return Recipe(steps=200, batch_size=16, lr=1e-3, views=2, seed=self.seed, augment=True,
                      checkpoint_every=50, log_every=10)

    def pretrain_loss(self, views, labels, labeled, model):
        """VICReg (Bardes et al. 2022) between the two views of each clip; labels are not used."""
        import torch
        import torch.nn.functional as F

        b, n, t = views.shape
        z = model(self._features(views.reshape(b * n, t))).reshape(b, n, -1)
        za, zb = z[:, 0], z[:, 1 % n]
        invariance = F.mse_loss(za, zb)
        variance = sum(F.relu(1 - torch.sqrt(x.var(dim=0) + 1e-4)).mean() for x in (za, zb))
        covariance = 0.0
        for x in (za, zb):
            x = x - x.mean(dim=0)
            cov = (x.T @ x) / max(1, b - 1)
            off = cov - torch.diag(torch.diag(cov))
            covariance = covariance + (off**2).sum() / x.shape[1]
        return 25 * invariance + 25 * variance + covariance


@hookimpl
def register_encoders(register):
    register("example_vicreg", VICRegEncoder, description="example plugin: log-mel CNN trained with VICReg")
