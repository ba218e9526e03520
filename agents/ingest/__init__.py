"""Ingestion agent: load -> register -> embed -> extract (LLM OpenIE) -> knowledge graph."""
