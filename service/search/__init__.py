"""FHIR search: parameter definitions (``parameters``), index rows derived on write
(``extraction``), pure parsing of criteria (``criteria``) and result parameters
(``controls``), the one SQL builder (``sql``), keyset pages (``runner``), ``_include`` /
``_revinclude`` (``includes``) and ``_summary``/``_elements`` (``projection``)."""
