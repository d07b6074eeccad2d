"""HealthGuard Ops shared library: config, database, broker, web app factory, metrics, auth."""
