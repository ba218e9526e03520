"""The recommendation (WebRec) agent: state, nodes and helpers for `graphs/recommend.py`."""
