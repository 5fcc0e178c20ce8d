"""The settings' helpers that stages need without needing the whole configuration: the
error a bad setting raises, the declaration of one key, and a secret file's reader."""

from __future__ import annotations

from dataclasses import field
from typing import Any


class ConfigError(Exception):
    """A setting that cannot be used; the message names the key."""


def setting(default: Any, help: str, lo: float | None = None, hi: float | None = None,
            choices: tuple | None = None, flag: str | None = None, flag_value: Any = None):
    """One key of a settings section: default, help, bounds and flag (app.config reads them
    for the TOML file, the command line, --print-config and docs/settings.md)."""
    meta = {"help": help, "lo": lo, "hi": hi, "choices": choices, "flag": flag,
            "flag_value": flag_value}
    return field(default=default, metadata=meta)


def read_secret(path: str, key: str) -> str:
    """The first line of a secret file (a password, a token), without a byte-order mark and
    the spaces or tabs around it: an editor that adds them must not make every request fail
    (a token or password never begins or ends with white space)."""
    try:
        with open(path, encoding="utf-8-sig") as fh:
            secret = fh.readline().strip(" \t\r\n")
    except FileNotFoundError:
        raise ConfigError(f"{key}: file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{key}: cannot read {path} ({exc})") from None
    if not secret.strip():
        raise ConfigError(f"{key}: {path} is empty")
    return secret
