"""reconciliation-svc: finds and heals every discrepancy between our records and the providers'."""
