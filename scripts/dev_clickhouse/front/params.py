"""Reading [(name, value)] pairs, the form in which URL parameters, settings and
multipart fields arrive.
"""


def parse_bool(value):
    return value.strip().lower() in ("1", "true")


def last_value(pairs, name, default=None):
    values = [v for k, v in pairs if k == name]
    return values[-1] if values else default


def first_value(pairs, name, default=None):
    return next((v for k, v in pairs if k == name), default)
