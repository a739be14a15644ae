"""Handcrafted reference baseline: log-mel spectrogram statistics.

Each window is turned into a 96-band log-mel spectrogram (plain torch STFT),
summarised by the mean and standard deviation of every band over time: a
192-d embedding with no learned weights. It is the "what a spectrogram alone
gets you" row of the leaderboard.
"""

from __future__ import annotations

from bench import hookimpl
from bench.encoder import Encoder


class LogMelEncoder(Encoder):
    name = "logmel"
    sample_rate = 16000
    window = 48000  # 3 s
    n_mels = 96
    dim = 2 * n_mels
    self_contained = True  # no weights at all

    def __init__(self, **options):
        if options:  # accepting and recording an option it ignores would make the record lie
            from bench.errors import PluginError

            raise PluginError(f"encoder 'logmel' takes no options, got {sorted(options)} (its settings are fixed: "
                              "96 mel bands, n_fft 1024, hop 256); scope options to other encoders with "
                              "-O ENCODER:KEY=VALUE")
        super().__init__()
        from bench.dsp import mel_filterbank

        self.filterbank = mel_filterbank(self.sample_rate, 1024, self.n_mels, fmin=20.0)

    @classmethod
    def options_from_config(cls, config):
        return {}  # the config lists fixed settings, none of them an option

    def config(self):
        return {**super().config(), "n_fft": 1024, "hop": 256, "n_mels": self.n_mels, "fmin": 20.0}

    def embed(self, waveforms):
        import torch

        from bench.dsp import log_mel

        spec = log_mel(waveforms, self.sample_rate, n_fft=1024, hop=256, filterbank=self.filterbank)
        return torch.cat([spec.mean(dim=-1), spec.std(dim=-1)], dim=1)


@hookimpl
def register_encoders(register):
    register("logmel", LogMelEncoder, description="log-mel band means and stds (handcrafted baseline, 192-d)")
