"""The classifier's resize and PGD's projection on large images: faster, same meaning.

models.resize gives the antialiased resize an exact gradient of its own on large CPU
inputs (torch's forward, bitwise); the classifier resizes a grey image before repeating
its channel; api.project_linf builds one tensor instead of four. Each must give what the
plain torch expressions give.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from workbench.api import project_linf  # noqa: E402
from workbench.models import resize  # noqa: E402


def _native(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


@pytest.mark.parametrize("shape,size", [
    ((1, 1, 2100, 600), (160, 160)),   # a tall grey image, as a mammogram is
    ((2, 3, 1100, 1000), (224, 224)),  # a batch of colour photos
    ((1, 1, 1200, 900), (1300, 100)),  # up one axis, down the other
])
def test_fast_gradient_is_torchs(shape, size):
    torch.manual_seed(0)
    x = torch.rand(*shape, requires_grad=True)
    g = torch.randn(shape[0], shape[1], *size)
    y = resize.antialiased_resize(x, size)
    assert type(y.grad_fn).__name__ == "_AntialiasedResizeBackward"  # the fast path ran
    assert torch.equal(y, _native(x, size))  # forward: torch's own, bitwise
    (mine,) = torch.autograd.grad(y, x, g)
    (ref,) = torch.autograd.grad(_native(x, size), x, g)
    assert mine.shape == x.shape
    assert torch.allclose(mine, ref, rtol=1e-5, atol=1e-6 * float(ref.abs().max()))


@pytest.mark.parametrize("n_in,n_out", [(4688, 160), (2592, 160), (767, 224), (100, 1000),
                                        (10, 3), (7, 160), (5, 5)])
def test_weights_are_torchs(n_in, n_out):
    """The comb of impulses reads off the same weights as one impulse per channel."""
    probe = torch.zeros(1, n_in, n_in, 2)
    i = torch.arange(n_in)
    probe[0, i, i, :] = 1.0
    full = _native(probe, (n_out, 2))[0, :, :, 0].t()
    assert torch.equal(resize._weights(n_in, n_out, torch.float32), full)


def test_plain_call_where_no_gradient_or_small():
    big = torch.rand(1, 1, 1100, 1000)
    assert resize.antialiased_resize(big, (64, 64)).grad_fn is None
    small = torch.rand(1, 3, 300, 200, requires_grad=True)
    assert type(resize.antialiased_resize(small, (64, 64)).grad_fn).__name__ != \
        "_AntialiasedResizeBackward"


def test_grey_image_resized_before_its_channel_is_repeated():
    """Same logits and (up to rounding) the same input gradient as repeating first."""
    from workbench.models.card import ModelCard
    from workbench.models.classifier import Classifier, build_network

    torch.manual_seed(0)
    card = ModelCard(name="t", architecture="resnet18", weights="-", input_size=(64, 64),
                     class_names=("a", "b"))
    model = Classifier(build_network("resnet18", 2), card).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x = torch.rand(1, 1, 1200, 900, requires_grad=True)

    def old_forward(t):
        t = _native(t.expand(-1, 3, -1, -1), (64, 64))
        return model.net((t - model.mean) / model.std)

    new, old = model(x), old_forward(x)
    assert torch.allclose(new, old, atol=1e-6)
    (g_new,) = torch.autograd.grad(new[0, 1], x)
    (g_old,) = torch.autograd.grad(old[0, 1], x)
    assert torch.allclose(g_new, g_old, rtol=1e-4, atol=1e-6 * float(g_old.abs().max()))


def test_project_linf_same_bits_and_inputs_untouched():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 50, 40)
    adv = x + 0.05 * torch.randn_like(x)
    before = adv.clone(), x.clone()
    out = project_linf(adv, x, 0.01)
    assert torch.equal(out, torch.clamp(x + torch.clamp(adv - x, -0.01, 0.01), 0.0, 1.0))
    assert torch.equal(adv, before[0]) and torch.equal(x, before[1])
    # inside autograd it stays the out-of-place expression (differentiable)
    a = adv.clone().requires_grad_(True)
    project_linf(a, x, 0.01).sum().backward()
    assert a.grad is not None
