"""The running program's config, read from the Pulumi runtime once."""

from __future__ import annotations

from pathlib import Path

from components.settings.declarations import STACK_CONFIG_DIR
from components.settings.keys import Settings
from components.settings.parsing import SettingsError, parse_settings
from components.settings.stackfile import misplaced_problems


def read_stack_settings() -> Settings:
    """Read this stack's config from the Pulumi runtime, once."""
    import pulumi  # noqa: PLC0415 (keep the rest pure)
    from pulumi.runtime import config as runtime_config  # noqa: PLC0415

    values: dict[str, str] = dict(runtime_config.get_config_env())
    values.update(runtime_config.CONFIG.get())
    secret_keys = frozenset(runtime_config.get_config_secret_keys_env()) | frozenset(
        runtime_config._SECRET_KEYS.get()  # no public accessor exists
    )
    stack = pulumi.get_stack()
    source = f"{STACK_CONFIG_DIR}/Pulumi.{stack}.yaml"
    # The CLI runs the program in the project's folder: a stack file it skipped is beside it.
    if problems := misplaced_problems(Path.cwd(), stack):
        raise SettingsError(problems, source)
    try:
        return parse_settings(values, secret_keys)
    except SettingsError as error:
        raise SettingsError(error.problems, source) from None
