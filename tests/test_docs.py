"""Code shown in the docs runs as shown."""

import re
from pathlib import Path

from pgax import envs
from pgax.algorithms import PRESETS, get_preset
from pgax.train import train
from tests.helpers import seed

DOCS = Path(__file__).resolve().parent.parent / "docs"


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), re.S)


def test_the_new_preset_of_the_architecture_doc_registers_and_trains():
    (block,) = [b for b in python_blocks(DOCS / "architecture.md") if "register(Preset(" in b]
    assert len(block.strip().splitlines()) <= 40
    try:
        exec(compile(block, "docs/architecture.md", "exec"), {})
        preset = get_preset("npg_adam_critic")
        config = preset.config_type(num_envs=2, num_steps=16, hidden_sizes=(8,))
        env = envs.make("CartPole-v1")
        agent = preset.make_agent(config, env, 2)
        result = train(agent, env, num_envs=2, num_steps=16, num_iterations=2, seeds=[seed(0)])
        assert result.iterations_done == 2 and not result.nonfinite
    finally:
        PRESETS.pop("npg_adam_critic", None)
