"""pgax: policy-gradient reinforcement learning in JAX, verified against exact math."""

__version__ = "0.1.0"
