"""HTTP routers: they translate requests into interaction calls and results into responses."""
