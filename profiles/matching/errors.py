"""The one error the matching engine raises for a bad rule set."""


class RuleError(ValueError):
    """A match rule set that cannot be used. ``path`` names the offending place, e.g.
    ``fields[2].comparator.thresholds[0]``; the message says what is wrong there."""

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)
