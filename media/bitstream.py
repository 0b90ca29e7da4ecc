"""Reading just enough of an encoded video frame to know whether it is a keyframe and its size.

VP8 frames are parsed per RFC 6386 section 9.1; H.264 frames arrive in Annex B form (start
codes) as aiortc depayloads them, and sizes come from the sequence parameter set (H.264 7.3.2.1).
"""

from __future__ import annotations

from collections.abc import Iterator

_H264_IDR = 5
_H264_SPS = 7
# Profiles whose SPS carries chroma format and bit depth fields (H.264 7.3.2.1.1).
_H264_HIGH_PROFILES = frozenset({100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135})


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether the frame can be decoded on its own; every Opus packet can."""
    if codec == "VP8":
        return len(data) >= 10 and data[0] & 0x01 == 0 and data[3:6] == b"\x9d\x01\x2a"
    if codec == "H264":
        return any(nal[0] & 0x1F == _H264_IDR for nal in _nal_units(data) if nal)
    return True


def frame_size(codec: str, data: bytes) -> tuple[int, int] | None:
    """Width and height carried by a keyframe, or None when the frame does not say."""
    try:
        if codec == "VP8":
            if not is_keyframe(codec, data):
                return None
            width = int.from_bytes(data[6:8], "little") & 0x3FFF
            height = int.from_bytes(data[8:10], "little") & 0x3FFF
            return width, height
        if codec == "H264":
            for nal in _nal_units(data):
                if nal and nal[0] & 0x1F == _H264_SPS:
                    return _h264_sps_size(nal)
    except (IndexError, ValueError):
        return None
    return None


def _nal_units(data: bytes) -> Iterator[bytes]:
    """Split an Annex B byte stream at its 3- or 4-byte start codes."""
    starts: list[int] = []
    pos = data.find(b"\x00\x00\x01")
    while pos != -1:
        starts.append(pos + 3)
        pos = data.find(b"\x00\x00\x01", pos + 3)
    for index, start in enumerate(starts):
        end = starts[index + 1] - 3 if index + 1 < len(starts) else len(data)
        # a 4-byte start code leaves one zero byte at the end of the previous unit
        if index + 1 < len(starts) and end > start and data[end - 1] == 0:
            end -= 1
        yield data[start:end]


class _BitReader:
    """Reads fixed-width and Exp-Golomb fields from an RBSP."""

    def __init__(self, rbsp: bytes) -> None:
        self._data = rbsp
        self._pos = 0

    def bit(self) -> int:
        byte = self._data[self._pos >> 3]
        value = (byte >> (7 - (self._pos & 7))) & 1
        self._pos += 1
        return value

    def bits(self, count: int) -> int:
        value = 0
        for _ in range(count):
            value = (value << 1) | self.bit()
        return value

    def ue(self) -> int:
        zeros = 0
        while self.bit() == 0:
            zeros += 1
            if zeros > 31:
                raise ValueError("invalid Exp-Golomb code")
        return (1 << zeros) - 1 + self.bits(zeros)

    def se(self) -> int:
        value = self.ue()
        return (value + 1) // 2 if value & 1 else -(value // 2)


def _rbsp(nal: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 → 00 00)."""
    return nal.replace(b"\x00\x00\x03", b"\x00\x00")


def _skip_scaling_list(reader: _BitReader, size: int) -> None:
    last, next_scale = 8, 8
    for _ in range(size):
        if next_scale != 0:
            next_scale = (last + reader.se() + 256) % 256
        last = next_scale if next_scale != 0 else last


def _h264_sps_size(nal: bytes) -> tuple[int, int]:
    reader = _BitReader(_rbsp(nal[1:]))
    profile_idc = reader.bits(8)
    reader.bits(16)  # constraint flags, level_idc
    reader.ue()  # seq_parameter_set_id
    chroma_format_idc = 1
    if profile_idc in _H264_HIGH_PROFILES:
        chroma_format_idc = reader.ue()
        if chroma_format_idc == 3:
            reader.bit()  # separate_colour_plane_flag
        reader.ue()  # bit_depth_luma_minus8
        reader.ue()  # bit_depth_chroma_minus8
        reader.bit()  # qpprime_y_zero_transform_bypass_flag
        if reader.bit():  # seq_scaling_matrix_present_flag
            for index in range(8 if chroma_format_idc != 3 else 12):
                if reader.bit():
                    _skip_scaling_list(reader, 16 if index < 6 else 64)
    reader.ue()  # log2_max_frame_num_minus4
    pic_order_cnt_type = reader.ue()
    if pic_order_cnt_type == 0:
        reader.ue()
    elif pic_order_cnt_type == 1:
        reader.bit()
        reader.se()
        reader.se()
        for _ in range(reader.ue()):
            reader.se()
    reader.ue()  # max_num_ref_frames
    reader.bit()  # gaps_in_frame_num_value_allowed_flag
    width_mbs = reader.ue() + 1
    height_map_units = reader.ue() + 1
    frame_mbs_only = reader.bit()
    if not frame_mbs_only:
        reader.bit()  # mb_adaptive_frame_field_flag
    reader.bit()  # direct_8x8_inference_flag
    crop_left = crop_right = crop_top = crop_bottom = 0
    if reader.bit():  # frame_cropping_flag
        crop_left, crop_right, crop_top, crop_bottom = (reader.ue() for _ in range(4))
    crop_unit_x = 2 if chroma_format_idc in (1, 2) else 1
    crop_unit_y = (2 if chroma_format_idc == 1 else 1) * (2 - frame_mbs_only)
    width = width_mbs * 16 - crop_unit_x * (crop_left + crop_right)
    height = (2 - frame_mbs_only) * height_map_units * 16 - crop_unit_y * (crop_top + crop_bottom)
    return width, height
