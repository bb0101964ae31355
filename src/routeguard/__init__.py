"""routeguard: governed model routing for AI agents."""
