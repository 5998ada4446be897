import numpy as np
import pytest
import torch

from semg_hht.model.encoder import HHTEncoder, build_encoder, encode_batches


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


def plain_reference(seed: int) -> torch.nn.Module:
    """The same weights run by torch's own InstanceNorm2d and LeakyReLU, nothing in place."""
    reference = build_encoder(seed)
    for block in reference.encoder:
        block.instance_norm = torch.nn.InstanceNorm2d(block.conv.out_channels)
        block.activation = torch.nn.LeakyReLU(0.2)
    return reference.eval()


def test_fast_path_stays_within_1e4_of_the_plain_float32_forward():
    matrices = np.random.default_rng(0).random((13, 256, 256), dtype=np.float32) * 5
    with torch.inference_mode():
        expected = plain_reference(3)(torch.from_numpy(matrices)[:, None]).numpy()
    for batch_size in (1, 4, 13):
        batches = [matrices[i : i + batch_size] for i in range(0, len(matrices), batch_size)]
        features = np.concatenate(list(encode_batches(build_encoder(3), batches, torch.device("cpu"))))
        np.testing.assert_allclose(features, expected, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_bf16_is_an_option_not_the_default():
    matrices = np.random.default_rng(1).random((4, 256, 256), dtype=np.float32)
    encoder = build_encoder(0)
    plain = next(encode_batches(encoder, [matrices], torch.device("cpu")))
    bf16 = next(encode_batches(encoder, [matrices], torch.device("cpu"), bf16=True))
    assert plain.dtype == bf16.dtype == np.float32
    assert 0 < np.abs(plain - bf16).max() < 0.05 * np.abs(plain).max()
