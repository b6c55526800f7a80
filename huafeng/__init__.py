"""huafeng (画风): deep-learning image style transfer that runs offline on a CPU.

    import huafeng
    huafeng.stylize("photo.jpg", "starry-night").save("out.png")
"""
__version__ = "0.1.0"

from .api import load_styles, stylize, stylize_image
from .controls import Controls, Progress
from .errors import HuafengError, ImageError, OutputError, SettingsError, WeightsError
from .features import FeatureExtractor
from .image import load_image, read_image, save_image
from .methods import METHODS, get_stylizer, make_settings
from .methods.optimize import OptimizeSettings, OptimizeStylizer
from .provenance import Provenance, describe, read_provenance
from .styles import BUNDLED, sample_photo

__all__ = ["stylize", "stylize_image", "load_styles", "Controls", "Progress", "HuafengError", "ImageError", "OutputError",
           "SettingsError", "WeightsError", "FeatureExtractor", "load_image", "read_image", "save_image",
           "METHODS", "get_stylizer", "make_settings", "OptimizeSettings", "OptimizeStylizer", "BUNDLED",
           "sample_photo", "Provenance", "describe", "read_provenance"]
