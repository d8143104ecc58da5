"""ClickHouseError: an error as the client sees it, ClickHouse's error code and name and
its message, written as ClickHouse's HTTP handler writes it.
"""


class ClickHouseError(Exception):
    """An error reported to the client the way ClickHouse reports it."""

    def __init__(self, code, name, message):
        super().__init__(message)
        self.code = code
        self.name = name
        self.message = message

    def text(self, version):
        # ClickHouse ends the message with a dot unless it already has one.
        dot = "" if self.message.endswith(".") else "."
        return f"Code: {self.code}. DB::Exception: {self.message}{dot} ({self.name}) (version {version})"
