"""The benchmark of issue 7: a synthetic population, a floor to compare against, wrk workloads.

Nothing here is imported by the service; it measures the service from the outside, over HTTP,
exactly as a GP system or an integration engine would use it.
"""
