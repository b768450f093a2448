"""The feed-forward transformer network with conditional instance norm (stylekit.feedforward)."""
from __future__ import annotations

import pytest
import torch

from stylekit.errors import ParameterError
from stylekit.feedforward import TransformerNet, at_stroke_scale, one_hot, stylize_fast, work_size
from tests.conftest import synthetic_image


def _net(num_styles=3, seed=0, **kw):
    torch.manual_seed(seed)
    net = TransformerNet(num_styles, width=kw.get("width", (8, 16, 16)), blocks=kw.get("blocks", 1)).eval()
    # randomize the CIN parameters so the styles really differ
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(("gamma", "beta")):
                p.add_(0.3 * torch.randn_like(p))
    return net


@pytest.mark.parametrize("hw", [(97, 131), (300, 517), (8, 9), (64, 64)])
def test_output_has_exactly_the_input_size(hw):
    net = _net(2)
    x = torch.rand(1, 3, *hw)
    with torch.no_grad():
        y = net(x, one_hot(0, 2))
    assert y.shape == x.shape and torch.isfinite(y).all()
    out = stylize_fast(net, x, 1)
    assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize("hw", [(97, 131), (300, 517)])
@pytest.mark.parametrize("scale", [0.8, 2.0])
def test_stroke_scale_runs_the_net_at_one_over_the_scale_and_keeps_the_size(hw, scale):
    net = _net(2)
    seen: list[tuple[int, int]] = []
    hook = net.register_forward_pre_hook(lambda mod, args: seen.append(tuple(args[0].shape[-2:])))
    x = torch.rand(1, 3, *hw)
    out = stylize_fast(net, x, 1, stroke_scale=scale)
    hook.remove()
    assert seen == [(round(hw[0] / scale), round(hw[1] / scale))] == [work_size(*hw, scale)]
    assert out.shape == x.shape and 0 <= float(out.min()) and float(out.max()) <= 1
    assert torch.equal(stylize_fast(net, x, 1, stroke_scale=1.0), stylize_fast(net, x, 1))
    # the resizes are the only difference: an identity "network" gives the photo back (blurred a little)
    back = at_stroke_scale(lambda t: t, x, scale)
    assert back.shape == x.shape and (back - x).abs().mean() < 0.3


@pytest.mark.parametrize("bad", [0, 0.1, -1, 5, float("nan"), "big", None])
def test_bad_stroke_scales_are_clear_errors(bad):
    with pytest.raises(ParameterError, match="stroke scale"):
        stylize_fast(_net(1), torch.rand(1, 3, 32, 32), stroke_scale=bad)


def test_stroke_scale_limits_the_size_the_network_runs_at():
    with pytest.raises(ParameterError, match="limit is 4096"):
        work_size(1200, 1600, 0.25)
    with pytest.raises(ParameterError, match="at least 5x5"):
        stylize_fast(_net(1), torch.rand(1, 3, 12, 40), stroke_scale=4.0)


def test_one_hot_blend_equals_the_single_style_net():
    net = _net(3)
    x = synthetic_image(45, 61)
    for i in range(3):
        single = TransformerNet(1, width=(8, 16, 16), blocks=1).eval()
        state = net.state_dict()
        state = {k: (v[i:i + 1] if k.endswith(("gamma", "beta")) else v) for k, v in state.items()}
        single.load_state_dict(state)
        with torch.no_grad():
            a = net(x, one_hot(i, 3))
            b = single(x)            # N=1: default weights [1]
            c = single(x, [1.0])
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
        assert torch.equal(b, c)


def test_blend_is_a_mix_of_the_norm_parameters_and_batches_work():
    net = _net(2)
    x = synthetic_image(32, 40)
    with torch.no_grad():
        a, b = net(x, [1.0, 0.0]), net(x, [0.0, 1.0])
        m = net(x, [0.5, 0.5])
        m2 = net(x, [3.0, 3.0])                    # normalized to sum 1
        per_image = net(x.repeat(2, 1, 1, 1), torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    assert not torch.allclose(a, b, atol=1e-3)
    assert not torch.allclose(m, a, atol=1e-3) and not torch.allclose(m, b, atol=1e-3)
    torch.testing.assert_close(m, m2)
    torch.testing.assert_close(per_image[0:1], a, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(per_image[1:2], b, rtol=1e-5, atol=1e-5)


def test_strength_and_colour_preservation():
    net = _net(1)
    x = synthetic_image(40, 52)
    full = stylize_fast(net, x)
    assert torch.allclose(stylize_fast(net, x, strength=0.0), x, atol=1e-6)
    half = stylize_fast(net, x, strength=0.5)
    torch.testing.assert_close(half, (0.5 * full + 0.5 * x).clamp(0, 1))
    pc = stylize_fast(net, x, preserve_color=True)
    from stylekit.color import luminance_transfer

    torch.testing.assert_close(pc, luminance_transfer(full, x))
    assert not torch.allclose(pc, full, atol=1e-3)


@pytest.mark.parametrize("bad", [dict(strength=1.5), dict(strength=float("nan")), dict(style_weights=[-1.0]),
                                 dict(style_weights=[0.0]), dict(style_weights=[float("nan")]),
                                 dict(style_weights=5), dict(style_weights=[1.0, 1.0])])
def test_bad_parameters_are_clear_errors(bad):
    net = _net(1)
    with pytest.raises(ParameterError):
        stylize_fast(net, synthetic_image(16, 16), **bad)


def test_config_round_trip():
    net = TransformerNet(4, width=(8, 16, 32), blocks=2)
    again = TransformerNet.from_config(net.config)
    assert again.config == net.config
    assert set(again.state_dict()) == set(net.state_dict())


@pytest.mark.parametrize("norm", ["instance", "down-only"])
def test_context_branch_keeps_the_size_starts_as_the_identity_and_trains(norm):
    """``context=8``: a wide-context branch after the residual blocks (session 35). Odd and tiny sizes
    keep their shape; a net grown from one without the branch stylizes bit-for-bit as that one; the
    branch's zero-started last (gamma, beta) get gradients; the pooling round-trips through the config."""
    from stylekit.feedforward import grow_context_state
    from stylekit.training import load_model_state

    torch.manual_seed(0)
    plain = TransformerNet(2, width=(4, 8, 8), blocks=1, norm=norm, negative_slope=0.05).eval()
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(0.1 * torch.randn_like(p))
    wide = TransformerNet(2, width=(4, 8, 8), blocks=1, norm=norm, negative_slope=0.05, context=8).eval()
    load_model_state(wide, grow_context_state(wide, plain.state_dict()))
    for hw in [(97, 131), (300, 517), (8, 9), (33, 257)]:
        x = torch.rand(1, 3, *hw)
        with torch.no_grad():
            assert torch.equal(wide(x, [0.3, 0.7]), plain(x, [0.3, 0.7]))
    x = torch.rand(2, 3, 70, 90)
    wide.train()
    wide(x, one_hot(1, 2)).square().mean().backward()
    g = wide.ctx.c3.norm.gamma.grad
    assert g[1].abs().sum() > 0 and g[0].abs().sum() == 0  # only the chosen style's row
    again = TransformerNet.from_config(wide.config)
    assert wide.config["context"] == 8 and again.context == 8 and "context" not in plain.config
    assert set(again.state_dict()) == set(wide.state_dict())
    with pytest.raises(ParameterError, match="context"):
        TransformerNet(1, context=3)
    with pytest.raises(ParameterError, match="no context branch"):
        grow_context_state(plain, plain.state_dict())


def test_droplet_score_sees_a_planted_droplet():
    """feedforward.droplet_score: low for a plain net, high when one pixel drives every channel."""
    from stylekit.feedforward import droplet_score, norm_input_peaks

    torch.manual_seed(0)
    noise = torch.randn(1, 8, 64, 64)
    assert norm_input_peaks(noise).shape == (1, 64, 64)
    assert float(norm_input_peaks(noise).max()) < 3
    noise[0, 0, 5, 5] += 50.0               # one channel's spike (an edge, a stroke): a moderate value
    noise[..., 20, 30] += 50.0              # every channel at one place: a droplet
    peaks = norm_input_peaks(noise)
    assert float(peaks[0, 20, 30]) > 30 and float(peaks[0, 5, 5]) < 8

    net = TransformerNet(1, width=(4, 8, 8), blocks=1)
    x = synthetic_image(64, 64, 3)
    plain = droplet_score(net, x)
    with torch.no_grad():
        net.down[0].conv.weight.mul_(50.0)
        net.down[0].conv.bias.zero_()
    x[..., 30, 30] = 40.0   # an extreme pixel the scaled first layer turns into a spike in every channel
    assert droplet_score(net, x) > plain + 5
    assert not any(m._forward_hooks for m in net.modules())


def test_down_only_net_calibrated_on_one_photo_reproduces_the_instance_norm_net_on_it():
    """to_down_only replaces the per-image statistics after the downsampling layers by their average over the
    calibration photos; calibrated on one photo, the averages are that photo's own, so the output is equal."""
    from stylekit.feedforward import ConditionalAffine, ConditionalInstanceNorm, to_down_only

    net = _net(3, blocks=2)
    x = synthetic_image(40, 52, 3)
    down = to_down_only(net, x)
    assert down.norm == "down-only" and down.config["norm"] == "down-only"
    assert sum(isinstance(m, ConditionalInstanceNorm) for m in down.modules()) == 3  # the downsampling layers
    assert sum(isinstance(m, ConditionalAffine) for m in down.modules()) == 2 * 2 + 2
    other = synthetic_image(40, 52, 9)
    with torch.no_grad():
        for s in range(3):
            torch.testing.assert_close(down(x, one_hot(s, 3)), net(x, one_hot(s, 3)), rtol=1e-4, atol=1e-4)
        mixed = down(other, [0.2, 0.3, 0.5])
    assert torch.isfinite(mixed).all() and mixed.shape == other.shape
    again = TransformerNet.from_config(down.config)
    again.load_state_dict(down.state_dict())
    with torch.no_grad():
        assert torch.equal(again.eval()(other, [0.2, 0.3, 0.5]), mixed)
    assert "norm" not in net.config  # instance-norm files keep the description they always had
    assert TransformerNet.from_config(net.config).norm == "instance"


def test_down_only_one_hot_blend_and_bad_norms():
    from stylekit.feedforward import to_down_only

    down = to_down_only(_net(2), synthetic_image(32, 32, 1))
    x = synthetic_image(30, 34, 4)
    with torch.no_grad():
        a = down(x, [1.0, 0.0])
        b = down(x, torch.tensor([[1.0, 0.0]]))
    assert torch.equal(a, b)
    with pytest.raises(ParameterError, match="norm must be one of"):
        TransformerNet(2, norm="batch")
    with pytest.raises(ParameterError, match="converts an instance-norm net"):
        to_down_only(down, x)


def test_leaky_relu_option_round_trips_and_keeps_a_gradient_where_every_relu_is_off():
    """``negative_slope`` > 0: the same parameters with leaky ReLUs. Where every ReLU before the output layer
    is off (the gallery's "identity hole"), a ReLU net's output is the photo plus a constant and its layers get
    no gradient from there; the leaky net's do."""
    relu = _net(2, seed=5)
    leaky = TransformerNet.from_config({**relu.config, "negative_slope": 0.05})
    leaky.load_state_dict(relu.state_dict())
    assert "negative_slope" not in relu.config and leaky.config["negative_slope"] == 0.05
    assert leaky.negative_slope == 0.05 and TransformerNet.from_config(relu.config).negative_slope == 0.0
    x = synthetic_image(36, 40, 2)
    with torch.no_grad():
        assert not torch.allclose(leaky(x, [1.0, 0.0]), relu(x, [1.0, 0.0]), atol=1e-4)
    from stylekit.feedforward import dead_fraction

    assert dead_fraction(relu, x, [1.0, 0.0]) < 0.5
    grads = []
    for net in (relu, leaky):
        with torch.no_grad():
            net.up[1].norm.beta.fill_(-100.0)  # every channel feeding the output layer is off, everywhere
        assert dead_fraction(net, x, [1.0, 0.0]) == 1.0
        net.zero_grad()
        y = net(x, [1.0, 0.0])
        if net is relu:  # the output is the photo plus the output layer's bias: an identity hole
            torch.testing.assert_close(y - x, net.up[2].conv.bias.view(1, 3, 1, 1).expand_as(y))
        ((y - 0.5) ** 2).mean().backward()
        grads.append(net.up[1].conv.weight.grad.abs().sum().item())
    assert grads[0] == 0.0 and grads[1] > 0.0
    for bad in (-0.1, 1.0, float("nan"), "x"):
        with pytest.raises(ParameterError, match="negative_slope"):
            TransformerNet(2, negative_slope=bad)
