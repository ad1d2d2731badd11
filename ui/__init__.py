"""Streamlit-side helpers shared by pages."""
