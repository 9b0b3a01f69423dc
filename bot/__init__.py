"""Studio-alliance WeCom bot."""

__version__ = "0.1.0"
