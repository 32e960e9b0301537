"""pytest-edgeai: characterise deep-learning inference on whatever accelerator is attached."""

__version__ = "0.1.0"
