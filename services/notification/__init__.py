"""The notification service: domain events to email and webhook notifications."""
