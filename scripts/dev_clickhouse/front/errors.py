"""The one error type the client sees: ClickHouseError, a ClickHouse error code and name
with its message, rendered as ClickHouse's error text ("Code: N. DB::Exception: ...").
The engine layer (execution.py) raises it; the HTTP protocol (protocol.py) sends it."""


# --- errors -----------------------------------------------------------------

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
