"""Tool nodes and models: LLM backends, embeddings, stores, loaders, web, CTR, carousels."""
