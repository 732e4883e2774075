"""initkit: idempotent Kubernetes init-container jobs in one CLI."""

__version__ = "0.1.0"
