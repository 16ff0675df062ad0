"""The architecture-review evidence pack, derived from synthesized templates and the manifest."""
