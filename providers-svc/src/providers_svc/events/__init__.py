"""What the worker consumes from the bus."""
