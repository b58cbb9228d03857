"""What every engine service shares: the engine interface, validation, status, the servicer."""
