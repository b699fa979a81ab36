"""Offline checks of deploy/: Kubernetes manifests, compose files, image requirements."""
