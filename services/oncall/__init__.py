"""On-call service (:8003): identity, sessions, shift schedules and who is available now."""
