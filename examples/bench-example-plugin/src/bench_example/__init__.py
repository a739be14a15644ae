"""Example third-party encoder plugin: a fixed random projection of a log-magnitude spectrum.

Install it (``pip install ./examples/bench-example-plugin``) and it appears in
``bench list`` and can be run with ``bench run --encoder example_randproj``.
Note that torch is imported inside the encoder, not at module level, so that
``bench --help`` stays fast for everyone who has this plugin installed.
"""

from bench import hookimpl
from bench.encoder import Encoder


class RandomProjectionEncoder(Encoder):
    name = "example_randproj"
    sample_rate = 16000
    window = 16000
    dim = 64

    def __init__(self, seed: int = 0, **options):
        super().__init__(seed=seed, **options)
        import torch

        gen = torch.Generator().manual_seed(seed)
        self.module = torch.nn.Linear(513, self.dim, bias=False)
        with torch.no_grad():
            self.module.weight.copy_(torch.randn(self.dim, 513, generator=gen) / 513**0.5)

    def embed(self, waveforms):
        import torch

        spec = torch.stft(waveforms, n_fft=1024, hop_length=512, window=torch.hann_window(1024, device=waveforms.device),
                          return_complex=True).abs()
        return self.module(torch.log1p(spec).mean(dim=-1))


@hookimpl
def register_encoders(register):
    register("example_randproj", RandomProjectionEncoder, description="example plugin: random projection of a spectrum")
