#!/usr/bin/env bash
# The GPU check of issue #25: install this project offline on the GPU machine, then run
# benchmarks/gpu_check.py; or, on a machine with the network, download the wheels it needs.
#
#   bash benchmarks/gpu_check.sh download     # here (network): Python 3.12 x86-64 wheels into .whl/
#   bash benchmarks/gpu_check.sh [ARGS...]    # on the GPU machine (no network): install, then
#                                             #   python3 benchmarks/gpu_check.py --out $OUT ARGS
#
# The GPU machine (docs: benchmarks/README.md, "GPU") has Python 3.12 with torch, accelerate,
# transformers, pandas, pyarrow, scikit-learn, pluggy, safetensors, tabulate, six, xxhash, fsspec,
# matplotlib, setuptools and wheel, but not the packages below. .whl/ is ignored by git (.gitignore)
# and travels with the `run` tool's `carry: [".whl"]` (about 14 MB; the limit is 64 MiB).
# Wheels go to /tmp/site (PYTHONPATH), the project into the machine's Python with
# `pip install --no-deps -e .` (falling back to a plain install into /tmp/site).
set -u
cd "$(dirname "$0")/.."
WHEELS=${GPU_CHECK_WHEELS:-.whl}
PY=${PYTHON:-python3}
# what the project imports that the machine lacks, and what those need (pretty_midi: mido, six,
# importlib_resources; soundfile: cffi, pycparser; mir_eval: decorator; datasets: dill, multiprocess)
PACKAGES="pretty_midi midirenderer mido importlib_resources mir_eval decorator julius pedalboard soundfile cffi
pycparser soxr platformdirs datasets dill multiprocess"

if [ "${1:-}" = "download" ]; then
    mkdir -p "$WHEELS"
    # pins from constraints.txt where it has them (the versions the suite was verified with)
    # shellcheck disable=SC2086
    exec "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -c constraints.txt -d "$WHEELS" $PACKAGES
fi

OUT=${OUT:-gpu-check-out}
mkdir -p "$OUT"
{
    echo "== install ($(date -u +%FT%TZ)): $("$PY" --version 2>&1) at $(command -v "$PY")"
    if ls "$WHEELS"/*.whl >/dev/null 2>&1; then
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
            "$WHEELS"/*.whl || echo "WARNING: the wheels in $WHEELS did not all install"
    else
        echo "WARNING: no wheels in $WHEELS (bash benchmarks/gpu_check.sh download, then carry .whl)"
    fi
    export PYTHONPATH=/tmp/site:/tmp/srcmap${PYTHONPATH:+:$PYTHONPATH}
    if [ "${GPU_CHECK_INSTALL:-pip}" != links ] \
            && "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e .; then
        echo "project installed: pip install --no-deps -e ."
    else
        # needs no build backend: the three packages linked into /tmp/srcmap, and a dist-info holding
        # pyproject.toml's entry points (the built-in plugins register through them)
        echo "pip install -e . failed or was skipped; linking the sources into /tmp/srcmap instead"
        "$PY" - <<'PYEOF'
import tomllib
from pathlib import Path

root, site = Path.cwd(), Path("/tmp/srcmap")
cfg = tomllib.loads((root / "pyproject.toml").read_text())
site.mkdir(exist_ok=True)
dirs = cfg["tool"]["setuptools"]["package-dir"]
for name, src in dirs.items():
    if not (site / name).exists():
        (site / name).symlink_to(root / src)
version = cfg["project"]["version"]
info = site / f"music_bench-{version}.dist-info"
info.mkdir(exist_ok=True)
(info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: music-bench\nVersion: {version}\n")
groups = {"console_scripts": cfg["project"]["scripts"], **cfg["project"]["entry-points"]}
(info / "entry_points.txt").write_text("".join(
    f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in table.items()) + "\n" for g, table in groups.items()))
print(f"linked {', '.join(dirs)} into {site}")
PYEOF
    fi
    "$PY" - <<'EOF'
import importlib
names = ("bench", "bench_plugins.ssl_encoders", "bench_tasks.nsynth", "torch", "accelerate", "soundfile", "soxr",
         "julius", "pretty_midi", "midirenderer", "mido", "mir_eval", "pedalboard", "platformdirs", "datasets")
bad = []
for n in names:
    try:
        importlib.import_module(n)
    except Exception as e:  # report every one that fails, not only the first
        bad.append(f"{n} ({type(e).__name__}: {e})")
print("could not import: " + "; ".join(bad) if bad else "every module imports")
EOF
} 2>&1 | tee "$OUT/install.txt"
export PYTHONPATH=/tmp/site:/tmp/srcmap${PYTHONPATH:+:$PYTHONPATH}

set -o pipefail
PYTHONUNBUFFERED=1 "$PY" benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/log.txt"
