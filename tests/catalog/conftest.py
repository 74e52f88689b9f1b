"""The catalog's tests: `_catalog_support` (beside this file) is importable from them."""
