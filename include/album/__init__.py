"""The pipeline as a plain Python package, in layers; see README "Layout"."""
