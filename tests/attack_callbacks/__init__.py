"""Adversarial tests of how waits and batches take Evolink callbacks (a package: its
support modules, `_server` among them, must not clash with other test folders')."""
