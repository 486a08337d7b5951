"""The broker's files, pure: Mosquitto configuration, password file and ACL rendering, password hashing. The process
that runs them is workers/broker_process.py."""
