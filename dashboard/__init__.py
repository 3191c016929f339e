"""The live dashboard (Streamlit) over the 15-minute aggregate tables."""
