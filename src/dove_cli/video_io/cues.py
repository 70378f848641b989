"""Text subtitle cues laid one after another for MP4/MOV text tracks (mov_text), which cannot overlap.

A tx3g track plays one sample after another, so two cues on screen at once (a sign over a line of
dialogue, two speakers) cannot both be samples: ffmpeg ends the first where the second starts,
and its text is gone from then on. Here the overlap becomes samples of its own that hold the text of
every cue on screen, one line block, as a player that stacks them would show it: the cue on screen
first stays at the bottom and a later one goes above it, as libass stacks colliding lines, so a line
already shown does not jump when another appears. Times are ticks of the subtitle stream's time base.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Cue:
    """A cue from `start` to `end` (None: until the next one starts, as a duration-less cue shows);
    `ass`: its ASS dialogue event (ReadOrder,Layer,Style,Name,MarginL,MarginR,MarginV,Effect,Text),
    as FFmpeg's text subtitle decoders give it."""

    start: int
    end: int | None
    ass: bytes
    shared: bool = False  # on screen with another at some time (counted once)


NO_FIELDS = b"0,0,Default,,0,0,0,"  # an event's fields before its text, where it has none


def _fields(event: bytes) -> tuple[bytes, bytes]:
    """An ASS dialogue event's fields before its text, and its text."""
    parts = event.split(b",", 8)
    return (b",".join(parts[:8]), parts[8]) if len(parts) == 9 else (NO_FIELDS, event)


def one_event(events: list[bytes]) -> bytes:
    """The ASS events of one decoded cue (its rects: nearly always one) as one event, a line each."""
    if len(events) == 1:
        return events[0]
    return _fields(events[0])[0] + b"," + b"\\N".join(_fields(e)[1] for e in events)


def combined(cues: list[Cue]) -> bytes:
    """One event with the text of `cues` (in the order they started), the latest first: each line
    back to its own style (`\\r`), so that one cue's italics do not run into the next."""
    if len(cues) == 1:
        return cues[0].ass
    fields = [_fields(c.ass) for c in cues]
    lines = [b"{\\r" + head.split(b",")[2] + b"}" + text for head, text in fields]
    return fields[-1][0] + b"," + b"\\N".join(reversed(lines))


@dataclass
class Sequencer:
    """Cues in start order in (`push`), samples that do not overlap out; `overlapping`: how many
    cues shared the screen with another, for the one line that says so."""

    overlapping: int = 0
    _live: list[Cue] = field(default_factory=list)
    _at: int = 0

    def push(self, cue: Cue) -> list[Cue]:
        """The samples that end by `cue`'s start; `cue` is held until the next one or `flush`."""
        out = self._until(cue.start)
        for c in self._live:  # a cue without an end shows until this one starts
            if c.end is None:
                c.end = cue.start
        self._live = [c for c in self._live if c.end is None or c.end > cue.start]
        if not self._live:
            self._at = cue.start
        self._live.append(cue)
        return out

    def flush(self) -> list[Cue]:
        """The samples of the cues still held, at the end of the stream."""
        return self._until(None)

    def _until(self, t: int | None) -> list[Cue]:
        out: list[Cue] = []
        while self._live and (t is None or self._at < t):
            at = self._at
            cuts = [c.end for c in self._live if c.end is not None and c.end > at]
            cuts += [c.start for c in self._live if c.start > at] + ([t] if t is not None else [])
            nxt = min(cuts, default=None)
            on = [c for c in self._live if c.start <= at and (c.end is None or c.end > at)]
            if on:
                out.append(Cue(at, nxt, combined(on)))
                for c in on if len(on) > 1 else []:
                    self.overlapping += not c.shared
                    c.shared = True
            if nxt is None:
                self._live = []
                break
            self._at = nxt
            self._live = [c for c in self._live if c.end is None or c.end > nxt]
        return out
