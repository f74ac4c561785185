"""A WAV file and a function over WAV bytes, with the standard library only.

Kept apart from :mod:`tests.helpers.dlmodels`: a saved function ships its module's source,
and the packages that module imports are the model's requirements, so the "dog bark
translator" saved from here needs nothing beyond mlem_lib (no torch in its image).
"""

from __future__ import annotations

import io
import math
import struct
import wave
from typing import Any


def wav_bytes(seconds: float = 0.25, freq: float = 440.0, amplitude: float = 0.5,
              rate: int = 8000) -> bytes:
    """A mono 16-bit WAV file of a sine tone."""
    frames = b"".join(struct.pack("<h", int(amplitude * 32767 * math.sin(
        2 * math.pi * freq * i / rate))) for i in range(int(seconds * rate)))
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(frames)
    return buf.getvalue()


def bark(clip: bytes) -> dict[str, Any]:
    """A 'dog bark translator': the clip's length and loudness, and a verdict."""
    import array
    import io as _io
    import wave as _wave

    with _wave.open(_io.BytesIO(clip)) as w:
        rate, samples = w.getframerate(), array.array("h", w.readframes(w.getnframes()))
    peak = max((abs(s) for s in samples), default=0) / 32767
    return {"seconds": round(len(samples) / rate, 3), "peak": round(peak, 3),
            "says": "woof" if peak > 0.3 else "..."}
