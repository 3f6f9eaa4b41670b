"""Errors a user can cause. Each carries one line that names the file or option, what was
expected and what was found; the CLI prints that line and exits non-zero, no traceback."""


class RobolearnError(Exception):
    """Base for user-facing errors."""


class DataError(RobolearnError, ValueError):
    """A dataset that cannot be used as it is: wrong layout, bad values, inconsistent lengths."""


class ConfigError(RobolearnError, ValueError):
    """A configuration option that cannot work, caught before any training or rollout."""
