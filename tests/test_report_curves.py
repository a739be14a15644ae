"""The reproduce report draws the pretrained encoders' learning curves side by side when records carry them."""

from bench.experiments import report


def _rec(encoder, curve, seed=None):
    pre = {"probe_curve": curve}
    if seed is not None:
        pre["seed"] = seed
    return {"encoder": encoder, "variant": encoder, "task": "tiny", "condition": "clean", "pretraining": pre}


def test_curves_png_has_one_line_per_pretrained_encoder_and_seed(tmp_path):
    curve = [{"step": s, "task": "tiny", "metric": "accuracy", "value": v} for s, v in ((0, 0.2), (50, 0.4))]
    records = [_rec("semisupcon", curve, 0), _rec("semisupcon", curve, 0), _rec("semisupcon", curve, 1),
               _rec("simclr", curve), _rec("logmel", curve)]
    path = report._learning_curves(records, tmp_path)
    assert path == tmp_path / "curves.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_runs_drawn_are_the_pretrained_encoders_by_seed(tmp_path, monkeypatch):
    from bench.pretrain import curves

    seen = {}
    monkeypatch.setattr(curves, "plot_curves", lambda runs, path, title=None: seen.update(runs) or path)
    curve = [{"step": 0, "task": "tiny", "metric": "accuracy", "value": 0.2}]
    report._learning_curves([_rec("semisupcon", curve, 0), _rec("semisupcon", curve, 0), _rec("semisupcon", curve, 1),
                             _rec("simclr", curve), _rec("logmel", curve), _rec("supervised", [])], tmp_path)
    assert sorted(seen) == ["semisupcon s0", "semisupcon s1", "simclr"]


def test_no_curve_no_section(tmp_path):
    assert report._learning_curves([_rec("semisupcon", [])], tmp_path) is None
    assert not (tmp_path / "curves.png").exists()
