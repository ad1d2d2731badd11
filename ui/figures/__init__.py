"""Pure plotly figure builders, one module per topic: results in, `go.Figure` out; no Streamlit."""
