"""Test helpers shared by integration and end-to-end tests (fake upstream server, ...)."""
