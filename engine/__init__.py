"""VisionExplorer engine: data, models and training in plain PyTorch (no Streamlit, no plotly)."""
