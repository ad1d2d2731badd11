"""What one layer computes: convolution and pooling arithmetic, receptive fields, classic kernels,
activation curves and normalization layers."""
