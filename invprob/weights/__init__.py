"""Shipped prior weights: one folder per prior (``model.safetensors`` + ``config.json``)."""
