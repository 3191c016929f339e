"""Test support: local servers, fakes, fixture builders. Imported by tests; never a test itself."""
