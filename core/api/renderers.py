"""A faster JSON renderer for the API's busiest lists, with DRF's bytes."""

import orjson
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

_ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_encoder = JSONEncoder()


class FastJSONRenderer(JSONRenderer):
    """DRF's ``JSONRenderer`` output, written by orjson (several times faster on a page of rows).

    The bytes are DRF's compact UTF-8 form: no spaces, non-ASCII as is, U+2028 and U+2029
    escaped. Dates, times, dataclasses and anything else orjson does not write natively go
    through DRF's own encoder; a value orjson refuses (an integer beyond 64 bits, a key that
    is not text) sends the whole response back to DRF's renderer. With an indent asked for,
    DRF renders. Floats orjson writes its own way (``1e16``, not ``1e+16``; NaN as null), so
    this renderer is for responses without them: the license endpoints.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if (data is None or self.ensure_ascii or not self.compact
                or self.get_indent(accepted_media_type, renderer_context or {})):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            out = orjson.dumps(data, default=_encoder.default, option=_ORJSON_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80\xa8" in out or b"\xe2\x80\xa9" in out:  # as DRF does, for JavaScript's sake
            out = out.replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")
        return out
