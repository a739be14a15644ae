"""SampleCNN shapes, presets, seeded init, and the encoder plugins' contract."""


import pytest
import torch

from bench.errors import PluginError


def test_paper_preset_shapes():
    from bench_plugins import samplecnn

    p = samplecnn.PRESETS["paper"]
    assert (p["sample_rate"], p["window"], p["dim"]) == (22050, 59535, 512)
    net = samplecnn.build("paper", seed=0)
    assert len(net.encoder.blocks) == 9
    assert [b[0].out_channels for b in net.encoder.blocks] == [128, 128, 256, 256, 256, 256, 256, 256, 512]
    stem = net.encoder.stem[0]
    assert (stem.in_channels, stem.out_channels, stem.kernel_size, stem.stride) == (1, 128, (3,), (3,))
    assert [m.bias is None for m in net.head if isinstance(m, torch.nn.Linear)] == [True, True]
    net.eval()
    with torch.no_grad():
        x = torch.randn(2, 59535)
        assert net.encoder(x).shape == (2, 512)
        assert net(x).shape == (2, 128)


def test_demo_preset_shapes_and_wrong_window():
    from bench_plugins import samplecnn

    p = samplecnn.PRESETS["demo"]
    net = samplecnn.build("demo", seed=0)
    assert net.encoder(torch.randn(3, p["window"])).shape == (3, p["dim"])
    with pytest.raises(ValueError, match="expects"):
        net.encoder(torch.randn(3, p["window"] - 1))
    with pytest.raises(ValueError, match="time axis"):
        samplecnn.SampleCNN(1000, 8, (8, 8), 8)


def test_encoders_registered_cheaply_and_contract():
    from bench import plugins

    names = plugins.encoders().names()
    assert {"semisupcon", "simclr", "supervised", "random"} <= set(names)
    for name in ("semisupcon", "simclr", "supervised", "random"):
        enc = plugins.get_encoder(name)
        enc.eval()
        with torch.no_grad():
            out = enc.embed(torch.randn(2, enc.window))
        assert out.shape == (2, enc.dim)
        assert enc.config()["preset"] == "demo"
        assert "checkpoint" not in enc.config()
    from bench.encoder import TrainableEncoder

    assert not isinstance(plugins.get_encoder("random"), TrainableEncoder)
    assert isinstance(plugins.get_encoder("semisupcon"), TrainableEncoder)


def test_plugin_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, bench_plugins.ssl_encoders; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_random_encoder_is_deterministic_and_seeded():
    from bench.weights import weights_hash
    from bench_plugins.ssl_encoders import RandomEncoder

    torch.manual_seed(999)
    before = torch.rand(1)
    a, b = RandomEncoder(), RandomEncoder()
    assert weights_hash(a) == weights_hash(b)
    assert weights_hash(RandomEncoder(seed=1)) != weights_hash(a)
    torch.manual_seed(999)
    RandomEncoder()
    assert torch.rand(1) == before  # building an encoder leaves the caller's RNG alone


def test_unknown_options_and_presets_are_clear():
    from bench_plugins.ssl_encoders import SemiSupConEncoder, SimCLREncoder

    with pytest.raises(PluginError, match="unknown SampleCNN preset 'huge'.*demo, paper"):
        SemiSupConEncoder(preset="huge")
    with pytest.raises(PluginError, match="unknown option.*'tua'"):
        SemiSupConEncoder(tua=0.2)
    with pytest.raises(PluginError, match="uses no labels"):
        SimCLREncoder(label_task="mtat")


def test_checkpoint_of_another_preset_or_encoder_refused(tmp_path):
    from bench.weights import save_checkpoint
    from bench_plugins.ssl_encoders import SemiSupConEncoder, SimCLREncoder

    path = save_checkpoint(SimCLREncoder(), tmp_path / "simclr.safetensors")
    assert SimCLREncoder(checkpoint=str(path)).checkpoint == str(path)
    with pytest.raises(PluginError, match="(?s)saved by encoder 'simclr'.*loaded into encoder 'semisupcon'"):
        SemiSupConEncoder(checkpoint=str(path))
    with pytest.raises(PluginError, match="'preset': 'demo'"):
        SimCLREncoder(preset="paper", checkpoint=str(path))


def test_supervised_head_and_loss():
    from bench_plugins.ssl_encoders import SupervisedEncoder

    from bench.encoder import LabelSpace

    enc = SupervisedEncoder()
    classes = tuple("abcde")
    enc.setup_pretraining(LabelSpace(classes, "multilabel"))
    views = torch.randn(3, 1, enc.window)
    labels = torch.tensor([[1, 0, 1, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 1]]).float()
    everyone = torch.ones(3, dtype=torch.bool)
    loss = enc.pretrain_loss(views, labels, everyone, enc.training_module())
    loss.backward()
    assert enc.module.head.weight.grad is not None and enc.module.encoder.stem[0].weight.grad is not None
    enc.setup_pretraining(LabelSpace(classes, "multiclass"))
    assert torch.isfinite(enc.pretrain_loss(views, labels, everyone, enc.module)).item()
    # the head travels with the checkpoint and is rebuilt on load
    state = enc.state_dict()
    other = SupervisedEncoder()
    other.load_state_dict(state)
    assert other.module.head.weight.shape == (5, enc.dim)


def test_presets_set_their_own_objective_and_recipe_defaults():
    from bench_plugins.ssl_encoders import DEMO_LABEL_TASKS, SemiSupConEncoder, SimCLREncoder, SupervisedEncoder

    paper = SupervisedEncoder(preset="paper")
    demo = SupervisedEncoder(preset="demo")
    assert paper.objective["label_task"] == "mtat"  # the paper's labeled pool
    assert demo.objective["label_task"] == DEMO_LABEL_TASKS
    assert demo.config()["objective"]["label_task"] == DEMO_LABEL_TASKS  # part of the checkpoint's identity
    assert SupervisedEncoder(preset="demo", label_task="gtzan").objective["label_task"] == "gtzan"
    assert SupervisedEncoder(label_task=" mtat, gtzan ").config() == SupervisedEncoder(label_task="mtat,gtzan").config()
    with pytest.raises(PluginError, match="twice"):
        SupervisedEncoder(label_task="mtat,mtat")
    assert paper.recipe().steps == 50_000 and paper.recipe().lr == 1e-4
    assert paper.recipe().augment_variant == "official" and demo.recipe().augment_variant == "bench"
    assert demo.recipe().steps == 800 and demo.recipe().replace(steps="5").steps == 5
    # one demo recipe for every pretrained encoder (docs/pretraining.md "Demo recipe"); the paper's augments
    for enc in (SimCLREncoder(preset="demo"), SemiSupConEncoder(preset="demo"), demo):
        r = enc.recipe()
        assert (r.lr, r.steps, r.augment) == (1e-3, 800, False), enc.name
    assert (demo.recipe().views, SimCLREncoder(preset="demo").recipe().views) == (1, 2)
    assert SimCLREncoder(preset="paper").recipe().augment and not paper.recipe().augment
    assert SimCLREncoder(preset="demo", seed=7).recipe().seed == 7  # the training seed follows the encoder's
    with pytest.raises(PluginError, match="recipe options"):
        SupervisedEncoder(steps=5)  # recipe keys are not constructor options


def test_pool_before_relu_in_place_computes_the_canonical_block():
    """Blocks run conv-BN-pool-ReLU(in place): the same outputs, gradients and BN statistics as conv-BN-ReLU-pool."""
    import copy

    import torch
    from torch import nn

    from bench_plugins import samplecnn

    fast = samplecnn.SampleCNN(243, 4, (4, 8, 8, 8), 8)
    canon = copy.deepcopy(fast)
    for blk in canon.blocks:
        conv, bn, pool, _ = blk
        blk[2], blk[3] = nn.ReLU(), pool
    for m in (canon.stem, canon.last):
        m[2] = nn.ReLU()
    assert fast.state_dict().keys() == canon.state_dict().keys()
    x = torch.randn(6, 243, dtype=torch.float64)
    fast, canon = fast.double(), canon.double()
    outs = []
    for m in (fast, canon):
        y = m(x)
        (y * torch.arange(y.numel(), dtype=y.dtype).view_as(y)).sum().backward()
        outs.append((y.detach(), [p.grad for p in m.parameters()], [b.clone() for b in m.buffers()]))
    assert torch.equal(outs[0][0], outs[1][0])
    assert all(torch.equal(a, b) for a, b in zip(outs[0][1], outs[1][1]))
    assert all(torch.equal(a, b) for a, b in zip(outs[0][2], outs[1][2]))


@pytest.mark.parametrize("length", [27, 29, 3001])
def test_train_pool_matches_maxpool_values_and_gradients_with_ties(length):
    """The training path of the blocks' pool (a max over a view) is MaxPool1d exactly: values, and each gradient
    sent to the first maximum of its window, on an input full of ties and with a ragged tail."""
    from torch import nn

    from bench_plugins.samplecnn import TrainPool

    x = torch.randint(0, 3, (4, 5, length)).float()
    g = torch.randn(4, 5, length // 3)
    a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = TrainPool(3)(a), nn.MaxPool1d(3)(b)
    ya.backward(g)
    yb.backward(g)
    assert torch.equal(ya, yb) and torch.equal(a.grad, b.grad)
    with torch.no_grad():  # extraction takes the plain pool
        assert torch.equal(TrainPool(3)(x), nn.MaxPool1d(3)(x))
