"""The keyworking domain and its mapping to and from FHIR R4.

Pure Python: no web framework, no database. ``fhir_resources`` is the only module here that
imports the ``fhir.resources`` model package.
"""
