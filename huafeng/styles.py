"""The bundled sample paintings and photos, and parsing of ``--style NAME_OR_PATH[:WEIGHT]``."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import SettingsError

ASSETS = Path(__file__).resolve().parent / "assets"


@dataclass(frozen=True)
class BundledStyle:
    name: str
    title: str
    artist: str
    year: str

    @property
    def path(self) -> Path:
        return ASSETS / "styles" / f"{self.name}.jpg"


BUNDLED: dict[str, BundledStyle] = {s.name: s for s in [
    BundledStyle("starry-night", "The Starry Night", "Vincent van Gogh", "1889"),
    BundledStyle("the-scream", "The Scream", "Edvard Munch", "1893"),
    BundledStyle("great-wave", "The Great Wave off Kanagawa", "Katsushika Hokusai", "c.1831"),
    BundledStyle("udnie", "Udnie", "Francis Picabia", "1913"),
    BundledStyle("composition-vii", "Composition VII", "Wassily Kandinsky", "1913"),
    BundledStyle("mondrian", "Composition with grid", "Piet Mondrian", "c.1919"),
    BundledStyle("contrast-of-forms", "Contrast of Forms", "Fernand Léger", "1913"),
    BundledStyle("dance-foyer", "The Dance Foyer at the Opera", "Edgar Degas", "1872"),
    BundledStyle("charing-cross", "Charing Cross Bridge", "Claude Monet", "c.1900"),
    BundledStyle("san-giorgio", "San Giorgio Maggiore at Dusk", "Claude Monet", "1908"),
    BundledStyle("water-lilies", "Water Lilies", "Claude Monet", "1919"),
    BundledStyle("in-bed", "In Bed", "Henri de Toulouse-Lautrec", "1893"),
    BundledStyle("bedroom-in-arles", "Bedroom in Arles", "Vincent van Gogh", "1888"),
    BundledStyle("starry-rhone", "Starry Night Over the Rhône", "Vincent van Gogh", "1888"),
]}
PHOTOS = ("parrots", "cat")


def resolve_content(ref: str | os.PathLike) -> Path:
    """A path to a photo, or the name of a bundled sample photo (``parrots``, ``cat``)."""
    p = Path(ref).expanduser()
    if not p.exists() and str(ref) in PHOTOS:
        return sample_photo(str(ref))
    return p


def sample_photo(name: str = "parrots") -> Path:
    """Path of a bundled sample photo."""
    if name not in PHOTOS:
        raise SettingsError(f"unknown sample photo {name!r}; choose one of: {', '.join(PHOTOS)}.")
    return ASSETS / "photos" / f"{name}.jpg"


def parse_style_spec(spec: str) -> tuple[str, float]:
    """``"wave.jpg:0.7"`` → ``("wave.jpg", 0.7)``; no weight → 1.0.

    Only a suffix that parses as a number is a weight, so ``C:\\art\\wave.jpg`` stays a path.
    """
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            w = float(tail)
        except ValueError:
            return spec, 1.0
        if w < 0:
            raise SettingsError(f"style weight must be non-negative in {spec!r}.")
        return head, w
    return spec, 1.0


def resolve_style(ref: str | os.PathLike) -> Path:
    """A bundled style's name, or a path to an image file → a path.

    Raises :class:`SettingsError` listing the bundled names when it is neither.
    """
    s = str(ref)
    if s in BUNDLED:
        return BUNDLED[s].path
    p = Path(s).expanduser()
    if p.exists():
        return p
    raise SettingsError(f"unknown style {s!r}: not a file, and not a bundled style "
                        f"({', '.join(BUNDLED)}).")
