"""Reading name/value pairs, the form settings, URL and multipart parameters take
everywhere ([(name, value)] in request order): the first or last value of a name, and
ClickHouse's reading of a boolean parameter.  Shared by the HTTP protocol, the engine
layer and the adapters."""


def parse_bool(value):
    return value.strip().lower() in ("1", "true")


def last_value(pairs, name, default=None):
    values = [v for k, v in pairs if k == name]
    return values[-1] if values else default


def first_value(pairs, name, default=None):
    return next((v for k, v in pairs if k == name), default)
