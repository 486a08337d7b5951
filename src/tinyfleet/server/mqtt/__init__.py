"""MQTT: topic names, publishing, ingest."""
