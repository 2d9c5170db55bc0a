"""Keyworker FHIR: the HTTP service, its storage, search and operations.

The arrow points one way: ``service`` uses ``fhir_mappings`` (the keyworking domain and the
one place that imports the FHIR model package); nothing in ``fhir_mappings`` imports from here.
"""
