"""Where results go: the results file, face events, MQTT, the status endpoint, health
files, systemd, and fer-summary that reads the results back."""
