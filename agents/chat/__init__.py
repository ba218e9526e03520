"""Chat router agent: sends each turn to multi-hop QA, recommendation, ingestion or a plain reply."""
