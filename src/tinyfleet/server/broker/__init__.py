"""The embedded Mosquitto: configuration, credentials, ACLs, process."""
