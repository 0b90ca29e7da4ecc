"""The sound of the playback copy: each participant's audio on the timeline, summed into AAC-sized frames."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction

import av

from recording.composite_layout import SegmentFile

SAMPLE_RATE = 48000
AAC_FRAME = 1024


class AudioLane:
    """One audio track on the timeline as 16-bit mono samples, silence where it has none."""

    def __init__(self, segments: list[SegmentFile], t0: float) -> None:
        self._pieces = self._decode(segments, t0)
        self._held: list[tuple[int, bytes]] = []
        self._exhausted = False

    @staticmethod
    def _decode(segments: list[SegmentFile], t0: float) -> Iterator[tuple[int, bytes]]:
        for segment in segments:
            resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
            position: int | None = None
            with av.open(str(segment.path)) as container:
                for frame in container.decode(audio=0):
                    if frame.pts is None or frame.time_base is None:
                        continue
                    start = round((float(frame.pts * frame.time_base) - t0) * SAMPLE_RATE)
                    # Within a segment samples run on; jumps over 20 ms are real gaps.
                    if position is None or abs(start - position) > SAMPLE_RATE // 50:
                        position = start
                    for out in resampler.resample(frame):
                        data = bytes(out.planes[0])[: out.samples * 2]
                        yield position, data
                        position += out.samples

    def block(self, start: int, count: int) -> bytes:
        """Samples ``start`` .. ``start + count`` (timeline sample indices) as s16 bytes."""
        end = start + count
        while not self._exhausted and (
            not self._held or self._held[-1][0] + len(self._held[-1][1]) // 2 < end
        ):
            piece = next(self._pieces, None)
            if piece is None:
                self._exhausted = True
            else:
                self._held.append(piece)
        out = bytearray(count * 2)
        keep: list[tuple[int, bytes]] = []
        for piece_start, data in self._held:
            piece_end = piece_start + len(data) // 2
            lo, hi = max(start, piece_start), min(end, piece_end)
            if lo < hi:
                out[(lo - start) * 2 : (hi - start) * 2] = data[
                    (lo - piece_start) * 2 : (hi - piece_start) * 2
                ]
            if piece_end > end:
                keep.append((piece_start, data))
        self._held = keep
        return bytes(out)


class Mixer:
    """Sums the audio lanes (amix, no normalisation) into AAC-sized float frames."""

    def __init__(self, lanes: int) -> None:
        self.graph = av.filter.Graph()
        self.sources = [
            self.graph.add_abuffer(
                format="s16", sample_rate=SAMPLE_RATE, layout="mono", time_base=Fraction(1, SAMPLE_RATE)
            )
            for _ in range(max(lanes, 1))
        ]
        mix = self.graph.add("amix", f"inputs={len(self.sources)}:normalize=0:duration=longest")
        fmt = self.graph.add("aformat", f"sample_fmts=fltp:sample_rates={SAMPLE_RATE}:channel_layouts=mono")
        sink = self.graph.add("abuffersink")
        for index, source in enumerate(self.sources):
            source.link_to(mix, 0, index)
        mix.link_to(fmt)
        fmt.link_to(sink)
        self.sink = sink
        self.graph.configure()
        self.fifo = av.AudioFifo()

    def push(self, blocks: Sequence[bytes], pts: int) -> list[av.AudioFrame]:
        """Mix one block per lane (s16 bytes at sample ``pts``); returns the AAC-sized frames ready."""
        count = len(blocks[0]) // 2 if blocks else AAC_FRAME
        for source, data in zip(self.sources, blocks or [bytes(AAC_FRAME * 2)], strict=True):
            frame = av.AudioFrame(format="s16", layout="mono", samples=count)
            frame.planes[0].update(data)
            frame.sample_rate = SAMPLE_RATE
            frame.time_base = Fraction(1, SAMPLE_RATE)
            frame.pts = pts
            source.push(frame)
        return self._drain(final=False)

    def finish(self) -> list[av.AudioFrame]:
        """Flush the graph; the last frame may be shorter than an AAC frame."""
        for source in self.sources:
            source.push(None)
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[av.AudioFrame]:
        while True:
            try:
                mixed = self.sink.pull()
            except (BlockingIOError, av.EOFError):
                break
            assert isinstance(mixed, av.AudioFrame)
            self.fifo.write(mixed)
        frames = []
        while self.fifo.samples >= AAC_FRAME or (final and self.fifo.samples):
            chunk = self.fifo.read(min(AAC_FRAME, self.fifo.samples))
            if chunk is not None:
                frames.append(chunk)
        return frames
