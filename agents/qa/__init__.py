"""Multi-hop QA agent: NeuroPath path tracking + completion, baselines, and the reader."""
