"""Explaining a trained network: feature maps and filters, attributions (captum), attention maps for
ViTs, and robustness (corruptions, occlusion, adversarial examples)."""
