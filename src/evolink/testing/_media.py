"""What a task makes, by kind: its task `object`, its result files and their media type.

Result files are real and tiny, built with the standard library only: a PNG (`_png.py`), an
MP4 holding H.264 frames of raw (I_PCM) macroblocks, and a silent MPEG-1 Layer III (MP3)
stream. Each is deterministic from the prompt.
"""

from __future__ import annotations

import enum
import functools
import hashlib
import re
import struct

from evolink.testing._png import image_size, render_png

#: Seconds of video or audio made when the request names none.
DEFAULT_MEDIA_SECONDS = 5.0
#: Longest result file made, whatever the request asks (keeps files small).
MAX_MEDIA_SECONDS = 60.0


class Kind(enum.Enum):
    """What a model makes; the value is the task's `type`."""

    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"

    @property
    def endpoint(self) -> str:
        """The create route of this kind's models."""
        return f"/v1/{self.value}s/generations"

    @property
    def task_object(self) -> str:
        """The task's `object` field."""
        return f"{self.value}.generation.task"

    @property
    def extension(self) -> str:
        """Result files' extension."""
        return _EXTENSIONS[self]

    @property
    def content_type(self) -> str:
        """Result files' media type."""
        return _CONTENT_TYPES[self]

    @property
    def billing_rule(self) -> str:
        """`usage.billing_rule` of this kind's tasks."""
        return "per_second" if self is Kind.VIDEO else "per_call"

    def result_data(self, urls: list[str]) -> dict[str, object]:
        """Extra fields of a completed task: `result_data` with the first file's URL for
        video and audio (what Evolink's own client reads besides `results`)."""
        if self is Kind.IMAGE or not urls:
            return {}
        return {"result_data": {f"{self.value}_url": urls[0]}}


_EXTENSIONS = {Kind.IMAGE: "png", Kind.VIDEO: "mp4", Kind.AUDIO: "mp3"}
_CONTENT_TYPES = {Kind.IMAGE: "image/png", Kind.VIDEO: "video/mp4", Kind.AUDIO: "audio/mpeg"}


def render(kind: Kind, prompt: str, index: int, *, size: str | None, seconds: float) -> bytes:
    """Result file `index` of a task of `kind`."""
    if kind is Kind.IMAGE:
        width, height = image_size(size)
        return render_png(prompt, width, height, index)
    whole = max(1, min(round(seconds), int(MAX_MEDIA_SECONDS)))
    if kind is Kind.VIDEO:
        return render_mp4(prompt, index, whole)
    return render_mp3(whole)


# -- MP3 ----------------------------------------------------------------------------------

#: MPEG-1 Layer III, no CRC; 32 kbit/s, 48 kHz, no padding; mono: 144 * 32000 / 48000 = 96
#: bytes a frame, 1152 samples (24 ms). A side info of zeros (global gain 0, no main data)
#: is silence every decoder accepts.
_MP3_HEADER = bytes((0xFF, 0xFB, 0x14, 0xC0))
_MP3_FRAME = _MP3_HEADER + bytes(96 - len(_MP3_HEADER))
_MP3_FRAMES_PER_SECOND = 48_000 / 1152


@functools.lru_cache(maxsize=16)
def render_mp3(seconds: int) -> bytes:
    """`seconds` of silence as MP3 frames (about 4 KB a second)."""
    return _MP3_FRAME * round(seconds * _MP3_FRAMES_PER_SECOND)


# -- MP4 (H.264) --------------------------------------------------------------------------

_VIDEO_SIDE = 32  # pixels: 2 x 2 macroblocks
_MB_PER_FRAME = (_VIDEO_SIDE // 16) ** 2
_TIMESCALE = 1000
_FRAME_RATE = 2  # frames a second


class _Bits:
    """An RBSP written bit by bit, with Exp-Golomb codes (held as one integer: a list of
    bits cost the simulator a tenth of a second per video)."""

    def __init__(self) -> None:
        self.value = 0
        self.length = 0

    def u(self, width: int, value: int) -> None:
        self.value = (self.value << width) | (value & ((1 << width) - 1))
        self.length += width

    def ue(self, value: int) -> None:
        code = value + 1
        self.u(2 * code.bit_length() - 1, code)

    def se(self, value: int) -> None:
        self.ue(2 * value - 1 if value > 0 else -2 * value)

    def align(self) -> None:
        self.u(-self.length % 8, 0)

    def raw(self, data: bytes) -> None:
        self.u(8 * len(data), int.from_bytes(data, "big"))

    def trailing(self) -> bytes:
        self.u(1, 1)
        self.align()
        return self.value.to_bytes(self.length // 8, "big")


def _nal(header: int, rbsp: bytes) -> bytes:
    """A NAL unit: the header byte and the RBSP with emulation prevention bytes (a 3 after
    any two zeros that a byte of 0-3 follows)."""
    return bytes((header,)) + _EMULATION.sub(b"\x00\x00\x03", rbsp)


_EMULATION = re.compile(rb"\x00\x00(?=[\x00-\x03])")


def _sps() -> bytes:
    bits = _Bits()
    bits.u(8, 66)  # Baseline profile
    bits.u(8, 0xC0)  # constraint_set0 and set1: Constrained Baseline
    bits.u(8, 10)  # level 1.0
    bits.ue(0)  # seq_parameter_set_id
    bits.ue(0)  # log2_max_frame_num_minus4
    bits.ue(2)  # pic_order_cnt_type: output order is decoding order
    bits.ue(0)  # max_num_ref_frames
    bits.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    bits.ue(_VIDEO_SIDE // 16 - 1)  # pic_width_in_mbs_minus1
    bits.ue(_VIDEO_SIDE // 16 - 1)  # pic_height_in_map_units_minus1
    bits.u(1, 1)  # frame_mbs_only_flag
    bits.u(1, 1)  # direct_8x8_inference_flag
    bits.u(1, 0)  # frame_cropping_flag
    bits.u(1, 0)  # vui_parameters_present_flag
    return _nal(0x67, bits.trailing())


def _pps() -> bytes:
    bits = _Bits()
    bits.ue(0)  # pic_parameter_set_id
    bits.ue(0)  # seq_parameter_set_id
    bits.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    bits.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    bits.ue(0)  # num_slice_groups_minus1
    bits.ue(0)  # num_ref_idx_l0_default_active_minus1
    bits.ue(0)  # num_ref_idx_l1_default_active_minus1
    bits.u(1, 0)  # weighted_pred_flag
    bits.u(2, 0)  # weighted_bipred_idc
    bits.se(0)  # pic_init_qp_minus26
    bits.se(0)  # pic_init_qs_minus26
    bits.se(0)  # chroma_qp_index_offset
    bits.u(1, 0)  # deblocking_filter_control_present_flag
    bits.u(1, 0)  # constrained_intra_pred_flag
    bits.u(1, 0)  # redundant_pic_cnt_present_flag
    return _nal(0x68, bits.trailing())


def _idr_slice(frame: int, colour: tuple[int, int, int]) -> bytes:
    """One IDR picture: every macroblock I_PCM (raw samples), one flat YCbCr colour."""
    luma, blue, red = colour
    bits = _Bits()
    bits.ue(0)  # first_mb_in_slice
    bits.ue(7)  # slice_type: I (all slices of the picture)
    bits.ue(0)  # pic_parameter_set_id
    bits.u(4, 0)  # frame_num
    bits.ue(frame % 2)  # idr_pic_id: consecutive IDR pictures differ
    bits.u(1, 0)  # no_output_of_prior_pics_flag
    bits.u(1, 0)  # long_term_reference_flag
    bits.se(0)  # slice_qp_delta
    samples = bytes((luma,)) * 256 + bytes((blue,)) * 64 + bytes((red,)) * 64
    for _ in range(_MB_PER_FRAME):
        bits.ue(25)  # mb_type: I_PCM
        bits.align()  # pcm_alignment_zero_bit
        bits.raw(samples)
    return _nal(0x65, bits.trailing())


def _box(kind: bytes, *parts: bytes) -> bytes:
    payload = b"".join(parts)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _full_box(kind: bytes, version: int, flags: int, *parts: bytes) -> bytes:
    return _box(kind, struct.pack(">I", (version << 24) | flags), *parts)


_MATRIX = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)


def _sample_entry(sps: bytes, pps: bytes) -> bytes:
    avcc = _box(
        b"avcC",
        bytes((1, sps[1], sps[2], sps[3], 0xFF, 0xE1)),
        struct.pack(">H", len(sps)),
        sps,
        b"\x01",
        struct.pack(">H", len(pps)),
        pps,
    )
    name = b"evolink simulator"
    return _box(
        b"avc1",
        bytes(6),
        struct.pack(">H", 1),  # data_reference_index
        bytes(16),
        struct.pack(">HH", _VIDEO_SIDE, _VIDEO_SIDE),
        struct.pack(">II", 0x480000, 0x480000),  # 72 dpi
        bytes(4),
        struct.pack(">H", 1),  # frame_count
        bytes((len(name),)) + name + bytes(31 - len(name)),
        struct.pack(">Hh", 0x18, -1),
        avcc,
    )


@functools.lru_cache(maxsize=16)
def render_mp4(prompt: str, index: int, seconds: int) -> bytes:
    """An MP4 of `seconds` seconds: 32x32 H.264 at 2 frames a second (about 3 KB each)."""
    digest = hashlib.sha256(f"{index}\x00{prompt}".encode()).digest()
    frames = seconds * _FRAME_RATE
    samples = []
    for frame in range(frames):
        # Limited-range YCbCr, drifting from frame to frame.
        colour = tuple(16 + (digest[c] + 7 * frame * (c + 1)) % 220 for c in range(3))
        nal = _idr_slice(frame, (colour[0], colour[1], colour[2]))
        samples.append(struct.pack(">I", len(nal)) + nal)
    sps, pps = _sps(), _pps()
    ftyp = _box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isomiso2avc1mp41")
    mdat = _box(b"mdat", *samples)
    delta = _TIMESCALE // _FRAME_RATE
    duration = frames * delta
    stbl = _box(
        b"stbl",
        _full_box(b"stsd", 0, 0, struct.pack(">I", 1), _sample_entry(sps, pps)),
        _full_box(b"stts", 0, 0, struct.pack(">III", 1, frames, delta)),
        _full_box(b"stsc", 0, 0, struct.pack(">IIII", 1, 1, frames, 1)),
        _full_box(
            b"stsz",
            0,
            0,
            struct.pack(">II", 0, frames),
            *(struct.pack(">I", len(s)) for s in samples),
        ),
        _full_box(b"stco", 0, 0, struct.pack(">II", 1, len(ftyp) + 8)),
    )
    minf = _box(
        b"minf",
        _full_box(b"vmhd", 0, 1, bytes(8)),
        _box(b"dinf", _full_box(b"dref", 0, 0, struct.pack(">I", 1), _full_box(b"url ", 0, 1))),
        stbl,
    )
    mdia = _box(
        b"mdia",
        _full_box(b"mdhd", 0, 0, struct.pack(">IIIIHH", 0, 0, _TIMESCALE, duration, 0x55C4, 0)),
        _full_box(b"hdlr", 0, 0, bytes(4), b"vide", bytes(12), b"VideoHandler\x00"),
        minf,
    )
    tkhd = _full_box(
        b"tkhd",
        0,
        3,  # enabled, in the movie
        struct.pack(">IIIII", 0, 0, 1, 0, duration),
        bytes(8),
        struct.pack(">hhhH", 0, 0, 0, 0),
        _MATRIX,
        struct.pack(">II", _VIDEO_SIDE << 16, _VIDEO_SIDE << 16),
    )
    mvhd = _full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, _TIMESCALE, duration),
        struct.pack(">IH", 0x10000, 0x100),
        bytes(10),
        _MATRIX,
        bytes(24),
        struct.pack(">I", 2),  # next_track_ID
    )
    moov = _box(b"moov", mvhd, _box(b"trak", tkhd, mdia))
    return ftyp + mdat + moov
