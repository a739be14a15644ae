"""NSynth's on-disk vocabulary: split folders, instrument families and sources, note qualities.

Shared by the loader (:mod:`bench_tasks.nsynth`) and the demo generator
(:mod:`bench_tasks.nsynth_demo`), so neither imports the other's module for it.
"""

SPLIT_DIRS = {"train": "nsynth-train", "valid": "nsynth-valid", "test": "nsynth-test"}
FAMILIES = ["bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead", "vocal"]
SOURCES = ["acoustic", "electronic", "synthetic"]
QUALITIES = ["bright", "dark", "distortion", "fast_decay", "long_release", "multiphonic",
             "nonlinear_env", "percussive", "reverb", "tempo-synced"]
