"""Example tools for Keel, registered through the `keel.tools` entry points."""
