"""VisionExplorer engine: data, models and training in plain PyTorch (no Streamlit, no plotly)."""

import os

# OpenMP threads that spin while waiting starve everything else on a small machine: with the
# browser drawing plots beside a training run, a 2-thread step measured up to 100× slower here.
# Passive waiting must be chosen before torch starts its thread pool, i.e. before `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
