"""The napari reader: drop a recording folder (or its ``stack_metadata.json``) on napari and
scrub through it. Registered through the ``napari.manifest`` entry point (``napari.yaml``);
napari is imported only when a recording is opened, never by ``import split_dataset``."""
