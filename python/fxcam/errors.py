"""Exceptions raised for fx_status codes.

Every failing library call raises an FxError subclass carrying the status
(`.status`, e.g. -3), its name (`.status_name`, "FX_ERR_IO: ...") and
fx_last_error()'s message (`.message`). Subclasses also derive from the
matching built-in exception, so `except ValueError` or `except OSError`
work as Python users expect.
"""


class FxError(Exception):
    """A libfxcam call failed."""

    status = None

    def __init__(self, message, status=None, status_name=""):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.status_name = status_name
        self.message = message

    def __str__(self):
        return f"{self.message} [{self.status_name}]" if self.status_name else self.message


class InvalidArgumentError(FxError, ValueError):
    status = -1


class OutOfMemoryError(FxError, MemoryError):
    status = -2


class FileError(FxError, OSError):
    status = -3

    def __str__(self):  # OSError's own __str__ would print the args tuple
        return FxError.__str__(self)


class FormatError(FxError, ValueError):
    status = -4


class LimitError(FxError, ValueError):
    status = -5


class UnsupportedError(FxError):
    status = -6


class ModelError(FxError):
    status = -7


class LayerError(FxError, KeyError):
    status = -8

    def __str__(self):  # KeyError's own __str__ would quote the message
        return FxError.__str__(self)


class DeviceError(FxError):
    status = -9


class NumericError(FxError, ArithmeticError):
    status = -10


class NotAvailableError(FxError):
    status = -11


class InternalError(FxError):
    status = -12


_BY_STATUS = {cls.status: cls for cls in (InvalidArgumentError, OutOfMemoryError, FileError, FormatError,
                                           LimitError, UnsupportedError, ModelError, LayerError, DeviceError,
                                           NumericError, NotAvailableError, InternalError)}


def error_for(status, status_name, message):
    cls = _BY_STATUS.get(status, FxError)
    return cls(message, status, status_name)
