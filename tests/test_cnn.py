"""CNN torsos for image observations: the layout of a flattened image, the convolution against
`lax.conv_general_dilated`, the networks `--network` picks, and their one-line refusals."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from pgax.algorithms.a2c import A2CConfig
from pgax.algorithms.core import make_encoder, make_policy, make_value
from pgax.algorithms.ppo import PPOConfig, make_ppo
from pgax.cli import main
from pgax.envs import make
from pgax.errors import ConfigError
from pgax.policies import ConvEncoder, PatchConv, conv_encoder, mlp_policy
from pgax.spaces import Box, Discrete, ImageLayout, image_layout
from tests.helpers import seeded_key
from tests.learning import LearningClaim, preset_returns


class _ImageEnv:
    """Only the spaces, which is all the network builders read."""

    def __init__(self, source_shape, high=1.0, action_space=Discrete(3)):
        self.name = f"Image{source_shape}"
        self.observation_space = Box.from_bounds((int(np.prod(source_shape)),), 0.0, high, source_shape=source_shape)
        self.action_space = action_space


def test_image_layout_reads_the_source_shape():
    hwc = image_layout(Box.from_bounds((400,), 0.0, 1.0, source_shape=(10, 10, 4)))
    assert hwc == ImageLayout(10, 10, 4, channels_first=False, scale=1.0)
    chw = image_layout(Box.from_bounds((4 * 84 * 84,), 0.0, 255.0, source_shape=(4, 84, 84)))
    assert chw == ImageLayout(84, 84, 4, channels_first=True, scale=1.0 / 255.0)
    rgb = image_layout(Box.from_bounds((210 * 160 * 3,), 0.0, 255.0, source_shape=(210, 160, 3)))
    assert (rgb.height, rgb.width, rgb.channels, rgb.channels_first) == (210, 160, 3, False)
    gray = image_layout(Box.from_bounds((84 * 84,), 0.0, 255.0, source_shape=(84, 84)))
    assert (gray.height, gray.width, gray.channels) == (84, 84, 1)
    assert image_layout(Box.from_bounds((4,), -np.inf, np.inf, source_shape=(4,))) is None  # a vector stays one
    unbounded = image_layout(Box.from_bounds((64,), -np.inf, np.inf, source_shape=(8, 8)))
    assert unbounded.scale == 1.0
    assert make("Breakout-MinAtar").observation_space.source_shape == (10, 10, 4)
    assert make("CartPole-v1").observation_space.source_shape is None


@pytest.mark.parametrize("size, kernel, stride", [((10, 10), 3, 1), ((20, 17), 4, 2), ((36, 40), 8, 4)])
def test_patch_conv_equals_lax_convolution(size, kernel, stride):
    x = jax.random.normal(seeded_key(0), (2,) + size + (3,))
    layer = PatchConv(5, kernel, stride)
    params = layer.init(seeded_key(1), x)
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(seeded_key(2), p.shape), params)  # nonzero bias
    kernel_array, bias = params["params"]["kernel"], params["params"]["bias"]
    expected = jax.lax.conv_general_dilated(x, kernel_array, (stride, stride), "VALID",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"),
                                            precision=jax.lax.Precision.HIGHEST) + bias
    out = layer.apply(params, x)
    assert out.shape == expected.shape == (2, (size[0] - kernel) // stride + 1, (size[1] - kernel) // stride + 1, 5)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)


def test_a_channels_first_observation_gives_the_features_of_the_same_image_channels_last():
    image = jax.random.uniform(seeded_key(0), (3, 12, 12, 2))  # [N, H, W, C]
    last = ConvEncoder(ImageLayout(12, 12, 2, False, 1.0), ((4, 3, 1),))
    first = ConvEncoder(ImageLayout(12, 12, 2, True, 1.0), ((4, 3, 1),))
    params = last.init(seeded_key(1), image.reshape(3, -1))
    features = last.apply(params, image.reshape(3, -1))
    np.testing.assert_allclose(first.apply(params, jnp.moveaxis(image, -1, 1).reshape(3, -1)), features, atol=1e-6)
    assert features.shape == (3, 10 * 10 * 4)
    scaled = ConvEncoder(ImageLayout(12, 12, 2, False, 0.5), ((4, 3, 1),))
    halved = jax.nn.relu(scaled.apply(params, image.reshape(3, -1)))  # scale before the first layer
    assert not np.allclose(halved, features)


def test_auto_picks_the_minatar_cnn_for_minatar_and_the_nature_cnn_for_atari_frames():
    minatar = make("Breakout-MinAtar")
    policy, critic = make_policy(PPOConfig(), minatar), make_value(PPOConfig(), minatar)
    obs = jnp.zeros((2, 5, minatar.observation_space.dim))
    params = jax.eval_shape(policy.init, seeded_key(0), obs[0, 0])  # shapes only
    value_params = jax.eval_shape(critic.init, seeded_key(1), obs[0, 0])
    assert params["params"]["encoder"]["PatchConv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert params["params"]["MLP_0"]["Dense_0"]["kernel"].shape == (8 * 8 * 16, 64)
    assert value_params["params"]["encoder"]["PatchConv_0"]["kernel"].shape == (3, 3, 4, 16)
    assert jax.eval_shape(policy.apply, params, obs).logits.shape == (2, 5, 3)
    assert jax.eval_shape(critic.apply, value_params, obs).shape == (2, 5)

    atari = _ImageEnv((4, 84, 84), high=255.0, action_space=Discrete(6))
    encoder = make_encoder(A2CConfig(), atari)
    assert encoder.stack == ((32, 8, 4), (64, 4, 2), (64, 3, 1)) and encoder.layout.scale == 1.0 / 255.0
    features, _ = jax.eval_shape(encoder.init_with_output, seeded_key(0), jnp.zeros((1, 4 * 84 * 84)))
    assert features.shape == (1, 7 * 7 * 64)

    assert make_encoder(PPOConfig(), make("CartPole-v1")) is None
    assert make_encoder(PPOConfig(network="mlp"), minatar) is None
    assert make_encoder(PPOConfig(network="nature_cnn"), _ImageEnv((36, 36, 1))).stack[0] == (32, 8, 4)


def test_the_cnn_policy_starts_near_uniform_with_orthogonal_kernels():
    layout = ImageLayout(10, 10, 4, False, 1.0)
    policy = mlp_policy(Discrete(3), (32,), "relu", encoder=conv_encoder(layout, "cnn"))
    obs = (jax.random.uniform(seeded_key(0), (16, 400)) < 0.3).astype(jnp.float32)
    params = policy.init(seeded_key(1), obs[0])
    np.testing.assert_allclose(policy.apply(params, obs).probs, 1 / 3, atol=0.02)
    kernel = params["params"]["encoder"]["PatchConv_0"]["kernel"].reshape(36, 16)
    np.testing.assert_allclose(kernel.T @ kernel, 2.0 * np.eye(16), atol=1e-5)


@pytest.mark.parametrize("config, env, message", [
    (PPOConfig(network="cnn"), "CartPole-v1", "--network cnn needs image observations; CartPole-v1's are vectors"),
    (PPOConfig(network="nature_cnn"), "Breakout-MinAtar", "a 10 × 10 image is too small for nature_cnn"),
])
def test_a_network_that_does_not_fit_the_observations_is_one_line(config, env, message):
    with pytest.raises(ConfigError, match=message):
        make_policy(config, make(env))


@pytest.mark.parametrize("argv, message", [
    (["--env", "CartPole-v1", "--network", "cnn"], "--network cnn needs image observations"),
    (["--network", "resnet"], "--network 'resnet' is not known; use one of auto, mlp, cnn, nature_cnn"),
    (["--env", "SimpleRegulator", "--policy", "linear", "--network", "cnn"],
     "--network cnn is a torso for --policy mlp, not --policy linear"),
])
def test_bad_network_flags_are_one_line_and_exit_2(argv, message, capsys, tmp_path):
    code = main(["train", "ppo", "--steps", "4096", "--out", str(tmp_path)] + argv)
    err = capsys.readouterr().err
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


MINATAR_CONFIG = PPOConfig(num_envs=16, num_steps=128, minibatches=4, epochs=4, lr=1e-3, activation="relu",
                           hidden_sizes=(64,), network="cnn")
BREAKOUT = LearningClaim("ppo cnn Breakout-MinAtar 32k", preset_returns, {"train_return": (">=", 1.0)}, at_least=3,
                         measure_kwargs=dict(make=make_ppo, config=MINATAR_CONFIG, steps=32_768, eval_episodes=0,
                                             env_id="Breakout-MinAtar"))


@pytest.mark.slow
def test_ppo_with_the_minatar_cnn_learns_breakout():
    """PPO with the MinAtar CNN, 16 envs × 128 steps, lr 1e-3, 32,768 steps: the mean training return
    of the last 10 iterations ≥ 1.0 for at least 3 of 5 seeds (the median; a uniform policy scores
    about 0.6). Calibrated on seeds 0-4, 100-104, 200-204, 300-304: 0.89-1.89 over the 20 seeds, the
    medians of the sets 1.37, 1.23, 1.23, 1.47. The same run with `network="mlp"` (the grid as 400
    features) gave 0.60-0.86 on those 20 seeds, medians 0.67-0.73, so the threshold sits midway and the
    claim fails when the convolution is bypassed. (At 65,536 steps the CNN reached 2.65-3.42 and the MLP
    1.54-2.26 on the same seeds; the claim was cut to 32,768 steps for the suite's time.)"""
    BREAKOUT.check()


def test_the_gymnasium_adapter_keeps_the_shape_of_a_pixel_observation():
    import gymnasium as gym

    from pgax.envs.gymnasium_env import convert_spaces

    pixels = gym.spaces.Box(0, 255, (4, 84, 84), np.uint8)
    obs_space, _, obs_to_array, _ = convert_spaces(pixels, gym.spaces.Discrete(6), "Frames")
    assert obs_space.shape == (4 * 84 * 84,) and obs_space.source_shape == (4, 84, 84)
    assert image_layout(obs_space) == ImageLayout(84, 84, 4, channels_first=True, scale=1.0 / 255.0)
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 84, 84), dtype=np.uint8)
    np.testing.assert_array_equal(obs_to_array(frames), frames.reshape(2, -1).astype(np.float32))
    vector, _, _, _ = convert_spaces(gym.spaces.Box(-1.0, 1.0, (3,)), gym.spaces.Discrete(2), "Vector")
    assert vector.source_shape is None
