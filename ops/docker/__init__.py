"""What the Dockerfile copies into every image."""
