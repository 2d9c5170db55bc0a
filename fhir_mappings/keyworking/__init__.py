"""The keyworking domain: who is accountable for whom, who the key workers are, over time.

Pure functions over plain data (FHIR JSON in, rows and FHIR JSON out): the vocabulary
(``terminology``), the projection of resources into rows (``projection``), the rules that hold
on write (``rules``, ``nhs_number``), whom to contact (``resolver``, ``answer``), the gaps
report (``gaps``), caseloads (``caseload``), handover (``handover``) and the operations'
definitions (``definitions``). The service stores the rows and serves the answers.
"""
