"""The error type for bad user input.

Layer 0. A `ConfigError` carries one line that names the problem and the fix; the CLI prints it
without a traceback and exits with status 2.
"""


class ConfigError(ValueError):
    """Invalid configuration or input: the message is one line naming the problem and the fix."""
