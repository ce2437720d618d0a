"""Vision and text embeddings: the offline local engines and OpenAI-compatible endpoints."""
