"""Explaining predictions: attribution maps for CNNs (captum) and attention maps for ViTs."""
