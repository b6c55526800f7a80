"""Make the small sample images bundled in huafeng/assets from ../shared/data (run once).

Paintings and photos are resized so the long side is 512 px and saved as JPEG (quality 90).
"""
from pathlib import Path

from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "huafeng" / "assets"

STYLES = {  # short name -> file in shared/data/styles
    "starry-night": "vangogh_starry_night.jpg",
    "the-scream": "munch_the_scream.jpg",
    "great-wave": "hokusai_great_wave.jpg",
    "udnie": "picabia_udnie.jpg",
    "composition-vii": "kandinsky_composition_vii.jpg",
    "mondrian": "mondrian_composition.jpg",
    "contrast-of-forms": "leger_contrast_of_forms.jpg",
    "dance-foyer": "degas_dance_foyer.jpg",
    "charing-cross": "monet_charing_cross_bridge.jpg",
    "san-giorgio": "monet_san_giorgio_maggiore.jpg",
    "water-lilies": "monet_water_lilies_1919.jpg",
    "in-bed": "toulouse_lautrec_in_bed.png",
    "bedroom-in-arles": "vangogh_bedroom_in_arles.jpg",
    "starry-rhone": "vangogh_starry_night_over_the_rhone.png",
}
PHOTOS = {"parrots": "content/kodak24/23.png", "cat": "content/photos/chelsea.png"}


def shrink(src: Path, dst: Path, side: int = 512) -> None:
    im = Image.open(src).convert("RGB")
    im.thumbnail((side, side), Image.LANCZOS)
    im.save(dst, quality=90, optimize=True)


if __name__ == "__main__":
    for name, f in STYLES.items():
        shrink(SHARED / "styles" / f, OUT / "styles" / f"{name}.jpg")
    for name, f in PHOTOS.items():
        shrink(SHARED / f, OUT / "photos" / f"{name}.jpg")
