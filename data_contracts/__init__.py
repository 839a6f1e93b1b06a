"""What the data is.

The contract tables, their GX suites and request models, storage and import mappings.
"""
