import torch

from semg_hht.encoder import HHTEncoder, build_encoder


def test_output_shape_and_spatial_reduction():
    encoder = HHTEncoder().eval()
    shapes = []
    for block in encoder.encoder:
        block.register_forward_hook(lambda module, inputs, output: shapes.append(tuple(output.shape)))
    with torch.inference_mode():
        features = encoder(torch.rand(2, 1, 256, 256))
    assert features.shape == (2, 256)
    assert shapes == [(2, 64, 128, 128), (2, 128, 64, 64), (2, 256, 32, 32)]


def test_layers_are_the_fixed_architecture():
    encoder = HHTEncoder()
    for block, (c_in, c_out) in zip(encoder.encoder, [(1, 64), (64, 128), (128, 256)], strict=True):
        conv = block.conv
        assert (conv.in_channels, conv.out_channels) == (c_in, c_out)
        assert conv.kernel_size == (3, 3) and conv.stride == (2, 2) and conv.padding == (1, 1)
        assert isinstance(block.instance_norm, torch.nn.InstanceNorm2d)
        assert block.activation.negative_slope == 0.2


def test_state_dict_keys_match_the_original_checkpoints():
    assert list(HHTEncoder().state_dict()) == [f"encoder.{i}.conv.{p}" for i in range(3) for p in ("weight", "bias")]


def test_seeded_initialisation_is_reproducible_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    a, b, c = build_encoder(7), build_encoder(7), build_encoder(8)
    after = torch.rand(3)
    assert torch.equal(before, after)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key])
    assert not torch.equal(a.state_dict()["encoder.0.conv.weight"], c.state_dict()["encoder.0.conv.weight"])
