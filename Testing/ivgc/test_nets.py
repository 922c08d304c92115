"""IVGC networks (paper 001): MONAI's 3D ResNet-50 and RDINet's dynamic mapping module."""
import numpy as np
import pytest
import torch

from orbitai.models import build_model, count_parameters
from orbitai.ivgc.nets import DEMO_WIDTH, DynamicMapping, RDINet, ResNet50Classifier, resnet50_trunk

SMALL = (1, 1, 16, 32, 32)     # a small input keeps the tests fast; the nets pool globally


def test_resnet50_is_monais_bottleneck_resnet50():
    trunk, features = resnet50_trunk(1.0)
    # paper width: layers 3-4-6-3 of bottlenecks, 2048 pooled features, one input channel
    assert [len(getattr(trunk, f"layer{i}")) for i in range(1, 5)] == [3, 4, 6, 3]
    assert features == 2048 and trunk.conv1.in_channels == 1 and trunk.conv1.stride == (2, 2, 2)
    assert count_parameters(ResNet50Classifier(1.0)) == 46_163_010
    demo, f_demo = resnet50_trunk(DEMO_WIDTH)
    assert f_demo == 256 and demo.layer1[0].conv1.out_channels == 8
    assert count_parameters(ResNet50Classifier(DEMO_WIDTH)) == 730_378
    with pytest.raises(ValueError, match="width"):
        resnet50_trunk(0.01)


def test_resnet50_shapes_on_paper_input():
    torch.manual_seed(0)
    net = build_model("ivgc_resnet50", width=1 / 16).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 1, 32, 128, 128)).shape == (2, 2)
    assert net.input_names == ("image",) and net.cam_layer is net.trunk.layer4


def _rdinet(n_clinical=0, **kw):
    torch.manual_seed(0)
    return RDINet(12, n_clinical, width=1 / 16, **kw).eval()


def test_rdinet_shapes_and_inputs():
    net = _rdinet()
    x, r = torch.randn(3, *SMALL[1:]), torch.randn(3, 12)
    with torch.no_grad():
        assert net.image_features(x).shape == (3, 64)
        assert net.medical_features(r).shape == (3, 64)
        assert net.mapping[0].weights(net.medical_features(r)).shape == (3, 64, 64)
        assert net(x, r).shape == (3, 2)
    assert net.input_names == ("image", "radiomics")
    clin = _rdinet(16)
    assert clin.input_names == ("image", "radiomics", "clinical")
    with torch.no_grad():
        assert clin(x, r, torch.randn(3, 16)).shape == (3, 2)
    with pytest.raises(ValueError, match="clinical"):
        clin(x, r)
    with pytest.raises(ValueError, match="clinical"):
        net(x, r, torch.randn(3, 16))
    # the medical feature extractor is three MLP layers
    assert sum(isinstance(m, torch.nn.Linear) for m in net.medical) == 3
    assert build_model("ivgc_rdinet", n_radiomics=5, n_clinical=16, width=1 / 16).input_names[-1] == "clinical"


def test_parameter_counts_recorded():
    assert count_parameters(RDINet(20, 0, width=1.0)) == 47_124_674
    assert count_parameters(RDINet(20, 16, width=1.0)) == 47_125_698
    assert count_parameters(RDINet(20, 16, width=DEMO_WIDTH)) == 1_581_962


def test_dynamic_mapping_runs_k_times_in_sequence():
    net = _rdinet(k=3)
    calls: list[tuple[int, torch.Tensor, torch.Tensor]] = []
    gens = []
    for i, block in enumerate(net.mapping):
        block.register_forward_hook(lambda m, inp, out, i=i: calls.append((i, inp[0].detach(), out.detach())))
        block.generator.register_forward_hook(lambda m, inp, out: gens.append(out))
    x, r = torch.randn(2, *SMALL[1:]), torch.randn(2, 12)
    with torch.no_grad():
        net(x, r)
        z0 = net.image_features(x)
    assert [c[0] for c in calls] == [0, 1, 2] and len(gens) == 3
    # each iteration's output is the next one's input; the first takes z_0
    assert torch.equal(calls[0][1], z0)
    assert torch.equal(calls[1][1], calls[0][2]) and torch.equal(calls[2][1], calls[1][2])
    assert len(_rdinet(k=5).mapping) == 5


def test_skip_connection_and_mapping_formula():
    torch.manual_seed(1)
    block = DynamicMapping(dim=8, q_dim=6, hidden=10).eval()
    z, q = torch.randn(4, 8), torch.randn(4, 6)
    w = block.weights(q)
    expected = torch.stack([z[n] @ w[n] for n in range(4)]) + z       # z_m = z_i W + z_i
    assert torch.allclose(block.mapped(z, q), expected, atol=1e-6)
    assert torch.allclose(block(z, q), block.mlp(expected), atol=1e-6)
    # a zero generator gives W = 0: only the skip path is left, z_m = z_i
    with torch.no_grad():
        block.generator[-1].weight.zero_()
        block.generator[-1].bias.zero_()
    assert torch.equal(block.weights(q), torch.zeros(4, 8, 8))
    assert torch.allclose(block.mapped(z, q), z)


def test_w_depends_on_q():
    net = _rdinet()
    x, r = torch.randn(2, *SMALL[1:]), torch.randn(2, 12)
    r2 = r + torch.randn(2, 12)
    with torch.no_grad():
        w1 = net.mapping[0].weights(net.medical_features(r))
        w2 = net.mapping[0].weights(net.medical_features(r2))
        out1, out2 = net(x, r), net(x, r2)
    assert not torch.allclose(w1, w2) and not torch.allclose(out1, out2)
    # with every generator zeroed, q no longer reaches the output: the image passes by the skips alone
    with torch.no_grad():
        for block in net.mapping:
            block.generator[-1].weight.zero_()
            block.generator[-1].bias.zero_()
        a, b = net(x, r), net(x, r2)
        z = net.image_features(x)
        for block in net.mapping:
            z = block.mlp(z)
        assert torch.allclose(a, b) and torch.allclose(a, net.head(z), atol=1e-6)
        assert not torch.allclose(net(x + 1, r), a)     # the image still does


def test_medical_scaling_is_stored_and_used():
    net = _rdinet(n_clinical=2)
    feats = np.random.default_rng(0).normal(5.0, 3.0, (40, 14))
    feats[:, 3] = 7.0                                    # a constant column keeps SD 1
    net.set_medical_scaling(feats)
    assert np.allclose(net.medical_mean.numpy(), feats.mean(0), atol=1e-5)
    assert net.medical_std[3] == 1.0
    state = net.state_dict()
    assert "medical_mean" in state and "medical_std" in state
    r, c = torch.as_tensor(feats[:2, :12], dtype=torch.float32), torch.as_tensor(feats[:2, 12:], dtype=torch.float32)
    with torch.no_grad():
        z = (torch.cat([r, c], 1) - net.medical_mean) / net.medical_std
        assert torch.allclose(net.medical_features(r, c), net.medical(z))
    with pytest.raises(ValueError, match="medical features"):
        net.set_medical_scaling(feats[:, :5])


def test_rdinet_trains_one_step():
    net = _rdinet().train()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    x, r, y = torch.randn(4, *SMALL[1:]), torch.randn(4, 12), torch.tensor([0, 1, 0, 1])
    loss = torch.nn.functional.cross_entropy(net(x, r), y)
    loss.backward()
    assert torch.isfinite(loss)
    # gradients reach the trunk, the medical extractor and every generator
    assert net.trunk.conv1.weight.grad.abs().sum() > 0
    assert net.medical[0].weight.grad.abs().sum() > 0
    assert all(b.generator[-1].weight.grad.abs().sum() > 0 for b in net.mapping)
    opt.step()
