"""Named audio corruptions for the robustness experiment (method.md, "Robustness experiment").

A corruption is a function ``(waveform, sample_rate, strength, seed) -> waveform``
on a mono float32 numpy array. The output has the same sample rate; its length
is the input's except for ``time_stretch`` (about length / factor) and
``splice_out`` (exactly length - round(fraction x length)): they change what a
corruption is, so the track simply yields more or fewer windows. The same seed
gives the same output; the effects that draw nothing random ignore it.

Use: corrupt the decoded track at the encoder's sample rate, before it is cut
into windows, with a seed per track::

    cond = parse_conditions("reverb@0.5")[0]
    y = cond.apply(x, sample_rate, seed=track_seed(run_seed, item.track_id))

A *condition* is a corruption at one strength; its id (``reverb@0.5``) names
it in records and cache keys, and :data:`CLEAN` names the uncorrupted audio.
Strengths are in each corruption's own unit (a bit depth, a bitrate, a speed
factor), so an id reads as what was done:

=============  ====================================================  ===============  ========
name           strength (unit)                                       default levels   identity
=============  ====================================================  ===============  ========
augment        severity of the training augmentation chain           0, 0.5, 1,       0
               (bench.augment.Augmenter, applied to every clip)      1.5, 2
time_stretch   speed factor, pitch kept (pedalboard.time_stretch,    0.7, 0.85,       1
               Rubber Band R2); > 1 faster and shorter               1.15, 1.3
splice_out     fraction of the duration cut out, in 50-250 ms       0.1, 0.2, 0.3    0
               segments, the rest joined (shorter output)
reverb         room size; wet level = strength / 2 (pedalboard)      0.25, 0.5, 1     0
chorus         depth; mix = strength / 2 (pedalboard)                0.25, 0.5, 1     0
distortion     drive in dB (pedalboard tanh distortion)              10, 20, 30       none
compression    ratio, threshold 10 dB under the clip's RMS           2, 5, 20         1
               (pedalboard compressor)
reversal       1 = the clip played backwards                         1                0
bitcrush       bit depth relative to the clip's peak (pedalboard)    8, 6, 4          none
mp3            bitrate in kbit/s, constant bitrate MP3 (LAME via     64, 32, 16       none
               soundfile/libsndfile), decoded back
=============  ====================================================  ===============  ========

Level: reverb, chorus, distortion and compression rescale their output to the
input's RMS, so that they measure a change of timbre or dynamics and not of
loudness (loudness is the augment chain's gain). Bitcrush quantises relative
to the clip's peak, so a quiet clip is crushed as hard as a loud one
(pedalboard's step is 2^-bits of the peak).

:func:`parse_conditions` reads a user's list (``"augment@0.5,1;reverb;mp3@32"``);
:data:`SUITES` holds the default and a quick suite. A corruption that fails
on one clip raises :class:`CorruptionError`, which the caller counts and skips.

numpy, torch, pedalboard and soundfile are imported inside the functions:
parsing a condition list costs nothing.

Modules: :mod:`~bench.corruptions.effects` (the functions),
:mod:`~bench.corruptions.registry` (:class:`Corruption`, the table above, lookup
with did-you-mean), :mod:`~bench.corruptions.conditions` (:class:`Condition`,
:func:`track_seed`, suites and parsing); everything is re-exported here.
"""

from bench.corruptions.conditions import (SPEC_HELP, SUITES, Condition, display_order, parse_condition,
                                          parse_conditions, suite, track_seed)
from bench.corruptions.effects import SPLICE_SEGMENT_S, MP3_VERSIONS, mp3_rate
from bench.corruptions.registry import (CLEAN, ConditionSpecError, Corruption, CorruptionError, UnknownCorruptionError,
                                        corruptions, get)

__all__ = [
    "CLEAN",
    "MP3_VERSIONS",
    "SPEC_HELP",
    "SPLICE_SEGMENT_S",
    "SUITES",
    "Condition",
    "ConditionSpecError",
    "Corruption",
    "CorruptionError",
    "UnknownCorruptionError",
    "corruptions",
    "display_order",
    "get",
    "mp3_rate",
    "parse_condition",
    "parse_conditions",
    "suite",
    "track_seed",
]
