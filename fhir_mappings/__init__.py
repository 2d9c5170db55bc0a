"""The keyworking domain and its mapping to and from FHIR R4.

Pure Python: no web framework, no database. ``model`` is the only module here that imports
the ``fhir.resources`` model package (``null_elements`` adjusts fhir-core before it does).
"""
