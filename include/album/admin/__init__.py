"""Channel, tenant and subscription management and the command line (``python -m include.album``)."""
