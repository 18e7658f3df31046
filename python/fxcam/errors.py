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


class CancelledError(FxError):
    status = -13


_BY_STATUS = {cls.status: cls for cls in (InvalidArgumentError, OutOfMemoryError, FileError, FormatError,
                                           LimitError, UnsupportedError, ModelError, LayerError, DeviceError,
                                           NumericError, NotAvailableError, InternalError,
                                           CancelledError)}


def error_for(status, status_name, message):
    cls = _BY_STATUS.get(status, FxError)
    return cls(message, status, status_name)


class FxcamWarning(UserWarning):
    """A library warning: the call worked but its answer may mislead (a model
    traced in training mode, an all-zero map, a 1x1 target layer, an image
    scaled far from the model input, ...). `.code` is the FX_WARN_* value
    (fxcam.WARN_*), `.image` the index of the image it concerns (None when it
    concerns the model or the whole call). Filter them as any warning:
    warnings.simplefilter("error", fxcam.FxcamWarning)."""

    def __init__(self, message, code=0, image=None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.image = image

    def __str__(self):
        return self.message


def _caller_stacklevel():
    """The stacklevel that points warnings.warn at the first frame outside
    this package (the user's call), wherever inside fxcam it is raised."""
    import os
    import sys
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package:
        frame, level = frame.f_back, level + 1
    return level


def emit_warnings(items):
    """Raises each FxcamWarning with warnings.warn, attributed to the caller."""
    import warnings
    if not items:
        return
    level = _caller_stacklevel()
    for item in items:
        warnings.warn(item, stacklevel=level)
