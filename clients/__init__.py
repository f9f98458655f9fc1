"""The client half of the mesh: channels and command-line clients."""
