"""huafeng (画风): deep-learning image style transfer that runs offline on a CPU."""
__version__ = "0.1.0"
