"""Classifiers: loading (TorchScript or torchvision + state_dict), model cards, devices.

torch is imported lazily inside functions so that importing this package is cheap.
"""
