"""Alert ingestion service (:8001): receives device alarms, stores them and publishes them
to the alerts queue through the transactional outbox."""
