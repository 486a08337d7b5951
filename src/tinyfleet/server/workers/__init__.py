"""Everything that owns a thread, a socket or a child process: the MQTT link, ingest, publishing, the retained
guard, the rollout engine and its leader lock, the embedded broker. Workers call services; nothing below imports
them."""
