"""Typed errors. Every message is one sentence: what was wrong and what to do.

The CLI turns a :class:`HuafengError` into its message on stderr and exit code 2;
the service turns it into a JSON error with an HTTP status.
"""
from __future__ import annotations


class HuafengError(Exception):
    """Base class of every error huafeng raises on purpose (bad input, bad settings)."""

    exit_code = 2
    http_status = 400

    def __init__(self, message: str):
        # One line, always: the CLI prints it verbatim and the service returns it as JSON.
        super().__init__(" ".join(str(message).split()))


class ImageError(HuafengError):
    """A file that cannot be read as an image: missing, empty, truncated, corrupt or unsupported."""

    http_status = 415


class ImageTooLargeError(ImageError):
    """An image over the pixel limit (decompression-bomb guard)."""

    http_status = 413


class OutputError(HuafengError):
    """An output path that cannot be written, or that would overwrite an input."""


class SettingsError(HuafengError):
    """An invalid setting: unknown method, style, backbone, out-of-range value."""

    http_status = 422


class WeightsError(HuafengError):
    """Weights that are missing, corrupt, or of the wrong architecture."""

    http_status = 500


class ExportError(HuafengError):
    """An export that failed its check against torch (a broken graph, or int8 too far from fp32)."""

    http_status = 422
