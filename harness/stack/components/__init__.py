"""The components of the local stack, one module each."""
