"""Business logic between the API (and MQTT ingest) and the database. Routes only translate."""
