"""Stores: passage registry (SQLite), vectors (Chroma), knowledge graph (networkx), caches."""
