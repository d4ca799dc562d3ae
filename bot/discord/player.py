"""Playing clips in a voice channel: one ``GuildPlayer`` per server, playing its stored queue
(``cadenza.listening``) through discord.py's ``VoiceClient`` and showing it in a live "now playing"
message; and why voice cannot work here, when it cannot.

Audio: the clip's MP3 decoded in-process to 48 kHz stereo PCM (``cadenza.playback``), handed to
discord.py 20 ms at a time; discord.py encodes each frame to Opus (libopus), encrypts it with
the session's key and sends it over UDP from its own player thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes.util
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
import discord.opus
import discord.voice_client
import discord.voice_state

from cadenza import playback
from cadenza.deadlines import StageTimeout
from cadenza.errors import CadenzaError, UserError, new_error_id
from cadenza.listening import IDLE_SECONDS, entry_line
from cadenza.store import StoreError
from cadenza.store_rows import QueueEntry

if TYPE_CHECKING:
    from cadenza.discord.client import CadenzaBot

log = logging.getLogger(__name__)

UP_NEXT_SHOWN = 5
PLAY_SLACK = 15.0  # seconds a clip may play past its length before it is stopped
BITRATE_KBPS = 128

# Shows an entry: edits or sends the message it lives in, returns that message's id.
Show = Callable[[QueueEntry, list[QueueEntry]], Awaitable[None]]


def voice_problem() -> str | None:
    """Why this Cadenza cannot play in voice (a missing library), or None."""
    missing = None
    if not discord.voice_client.has_nacl:
        missing = "the PyNaCl package"
    elif not discord.voice_state.has_dave:
        missing = "the davey package (Discord's voice encryption)"
    elif not _opus_loaded():
        missing = "the Opus library (Debian package libopus0)"
    elif (package := playback.missing_decoder()) is not None:
        missing = f"the {package} package"
    if missing is None:
        return None
    return (f"voice is not available on this Cadenza: {missing} is not installed (./run.sh "
            "installs it). Everything else works as usual: /compose, the buttons, /top")


def _opus_loaded() -> bool:
    if discord.opus.is_loaded():
        return True
    name = ctypes.util.find_library("opus")
    if name is None:
        return False
    try:
        discord.opus.load_opus(name)
    except OSError:
        return False
    return discord.opus.is_loaded()


async def disconnect(voice: discord.VoiceClient, seconds: float) -> None:
    """Leave voice within ``seconds`` (the voice deadline). discord.py waits up to its own
    timeout for Discord to confirm, and catches a CancelledError that lands meanwhile: run as
    a task of its own under ``wait_for``, a cancellation of ours still ends us, and a silent
    Discord costs the deadline, not a hung /stop or shutdown. A failed disconnect leaves the
    client to discord.py's cleanup, as before."""
    with contextlib.suppress(discord.HTTPException, TimeoutError):
        await asyncio.wait_for(voice.disconnect(force=True), seconds)


class ClipSource(discord.AudioSource):
    """PCM from memory in 20 ms frames; the last one padded with silence."""

    def __init__(self, pcm: bytes) -> None:
        self._pcm = memoryview(pcm)
        self._at = 0

    def read(self) -> bytes:
        chunk = bytes(self._pcm[self._at:self._at + playback.FRAME_BYTES])
        self._at += playback.FRAME_BYTES
        if chunk and len(chunk) < playback.FRAME_BYTES:
            chunk += bytes(playback.FRAME_BYTES - len(chunk))
        return chunk

    def is_opus(self) -> bool:
        return False


def _span(seconds: float) -> str:
    return f"{seconds / 60:g} minute(s)" if seconds >= 60 else f"{seconds:g} s"


def now_playing_text(entry: QueueEntry, upcoming: list[QueueEntry], voice: str) -> str:
    lines = [f"▶ **Now playing** in 🔊 {voice}: {entry_line(entry)} — queued by "
             f"{entry.user_name}", "Rate it with the stars while you listen."]
    if upcoming:
        lines.append("Up next: " + ", ".join(f"#{e.number}" if e.number is not None else "…"
                                         for e in upcoming[:UP_NEXT_SHOWN])
                     + (" …" if len(upcoming) > UP_NEXT_SHOWN else ""))
    return "\n".join(lines)


class GuildPlayer:
    """The one player of a server: connects, plays the stored queue in order, leaves after
    ``idle`` seconds with nothing to play. ``on_finished(entry, status)`` is awaited after each
    clip (the Party cog follows its clips through it); ``show_party`` shows a party's clips in
    the party's own message."""

    def __init__(self, bot: CadenzaBot, guild_id: int, *,
                 on_finished: Callable[[QueueEntry, str], Awaitable[None]],
                 show_party: Show, view: Callable[[QueueEntry], discord.ui.View],
                 idle: float = IDLE_SECONDS) -> None:
        self.bot = bot
        self.app = bot.app
        self.guild_id = guild_id
        self.idle = idle
        self.text_channel_id: int | None = None
        self.message_id: int | None = None
        self.current: QueueEntry | None = None
        self._on_finished = on_finished
        self._show_party = show_party
        self._view = view  # the buttons under the now playing message
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._skipping = False
        self._closing = False

    # -- voice ------------------------------------------------------------------------------

    @property
    def guild(self) -> discord.Guild | None:
        return self.bot.get_guild(self.guild_id)

    @property
    def voice(self) -> discord.VoiceClient | None:
        guild = self.guild
        client = guild.voice_client if guild is not None else None
        return client if isinstance(client, discord.VoiceClient) else None

    @property
    def channel(self) -> discord.abc.GuildChannel | None:
        voice = self.voice
        return voice.channel if voice is not None and voice.is_connected() else None

    @property
    def busy(self) -> bool:
        return self.current is not None

    async def connect(self, channel: discord.VoiceChannel | discord.StageChannel) -> None:
        """Be in ``channel`` (joining it, or leaving another first), within the voice
        deadline."""
        voice = self.voice
        if voice is not None and voice.is_connected() and voice.channel.id == channel.id:
            return
        seconds = self.app.workers.deadlines.of("voice")
        if voice is not None:
            await disconnect(voice, seconds)
        try:
            await asyncio.wait_for(
                channel.connect(timeout=seconds, reconnect=True, self_deaf=True), seconds + 1)
        except TimeoutError:
            raise StageTimeout("voice", seconds) from None
        await self._save(voice_channel_id=channel.id)

    async def _save(self, *, voice_channel_id: int | None) -> None:
        try:
            await self.app.listening.set_player(self.guild_id,
                                                voice_channel_id=voice_channel_id,
                                                text_channel_id=self.text_channel_id,
                                                message_id=self.message_id)
        except StoreError:
            log.exception("could not save the player of guild %s", self.guild_id)

    async def leave(self, why: str | None = None) -> None:
        """Stop and leave voice (the queue is the store's business); ``why`` goes in the now
        playing message."""
        voice = self.voice
        self._skipping = True
        if voice is not None:
            voice.stop()
            await disconnect(voice, self.app.workers.deadlines.of("voice"))
        await self._save(voice_channel_id=None)
        if why is not None:
            await self._edit(why, None)

    # -- the queue --------------------------------------------------------------------------

    def kick(self) -> None:
        """Something was queued: play it (the loop starts if it is not running)."""
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = self.bot.spawn(self._run())

    def skip(self) -> bool:
        voice = self.voice
        if self.current is None or voice is None:
            return False
        self._skipping = True
        voice.stop()
        return True

    def shut(self) -> None:
        """The bot is closing: the loop ends at its next wait. (A cancellation alone was not
        enough: one delivered while discord.py awaited an HTTP answer was lost, and the loop
        then sat out its whole idle wait.)"""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            self._task.cancel()

    async def close(self) -> None:
        self.shut()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while not self._closing:
            self._wake.clear()
            entry = await self.app.listening.next(self.guild_id)
            if entry is None:
                if await self._wait_for_more():
                    continue
                return
            if self.channel is None:
                # Left voice meanwhile (/stop, kicked): the entry stays 'playing' in the store
                # and is the first to play at the next /play.
                log.info("guild %s: not in voice, the queue waits for /play", self.guild_id)
                return
            await self._play(entry)

    async def _wait_for_more(self) -> bool:
        """True when something was queued within ``idle`` seconds; else leave voice."""
        if self.channel is None:
            return False
        await self._edit("⏹ Nothing left to play: `/play clip:<number>` queues more. "
                         f"Leaving voice after {_span(self.idle)} of quiet.", None)
        try:
            await asyncio.wait_for(self._wake.wait(), self.idle)
            return not self._closing
        except TimeoutError:
            name = getattr(self.channel, "name", "voice")
            await self.leave(f"👋 Left 🔊 {name} after {_span(self.idle)} with nothing to "
                             "play.")
            return False

    async def _play(self, entry: QueueEntry) -> None:
        voice = self.voice
        assert voice is not None
        self.current, self._skipping = entry, False
        status = "played"
        try:
            pcm = await self.app.listening.pcm(entry)
            upcoming = [e for e in await self.app.listening.queue(self.guild_id)
                        if e.id != entry.id]
            await self._show(entry, upcoming)
            loop = asyncio.get_running_loop()
            done: asyncio.Future[Exception | None] = loop.create_future()

            def after(error: Exception | None) -> None:
                loop.call_soon_threadsafe(lambda: done.done() or done.set_result(error))

            voice.play(ClipSource(pcm), after=after, bitrate=BITRATE_KBPS, signal_type="music")
            try:
                error = await asyncio.wait_for(asyncio.shield(done),
                                               playback.seconds(pcm) + PLAY_SLACK)
            except TimeoutError:
                log.error("guild %s: clip #%s overran its length; stopped", self.guild_id,
                          entry.number)
                voice.stop()
                error = None
            if error is not None:
                log.error("guild %s: playing clip #%s failed: %s", self.guild_id, entry.number,
                          error)
            if self._skipping:
                status = "skipped"
        except UserError as e:  # the clip itself (gone, unreadable): the listeners may know
            log.warning("guild %s: cannot play %s: %s", self.guild_id, entry.label, e)
            status = "skipped"
            await self._send(f"⚠️ {entry.label[:1].upper()}{entry.label[1:]} could not be "
                             f"played ({e}); moving on.")
        except Exception as e:  # one clip's failure must not end the player
            # anything else (a stage past its deadline, the store, voice, a bug) is the
            # admins' to read in the log under its error id, as for commands
            error_id = new_error_id()
            log.error("guild %s: cannot play %s (error id %s)", self.guild_id, entry.label,
                      error_id, exc_info=not isinstance(e, CadenzaError | discord.ClientException))
            status = "skipped"
            await self._send(f"⚠️ {entry.label[:1].upper()}{entry.label[1:]} could not be "
                             f"played; the admins have been told (error id `{error_id}`). "
                             "Moving on.")
        finally:
            self.current = None
        with contextlib.suppress(StoreError):
            await self.app.listening.finish(entry, status)
        await self._on_finished(entry, status)

    # -- the now playing message ------------------------------------------------------------

    async def _show(self, entry: QueueEntry, upcoming: list[QueueEntry]) -> None:
        if entry.party_id is not None:
            await self._show_party(entry, upcoming)
            return
        name = getattr(self.channel, "name", "voice")
        await self._edit(now_playing_text(entry, upcoming, name), self._view(entry))

    async def _edit(self, content: str, view: discord.ui.View | None) -> None:
        """Edit the now playing message, or post it (again) in the text channel."""
        if self.text_channel_id is None:
            return
        channel = self.bot.get_partial_messageable(self.text_channel_id, guild_id=self.guild_id)
        if self.message_id is not None:
            try:
                await channel.get_partial_message(self.message_id).edit(content=content,
                                                                         view=view)
                return
            except discord.NotFound:
                self.message_id = None
            except discord.HTTPException:
                log.warning("could not update the now playing message", exc_info=True)
                return
        try:
            message = await channel.send(content, view=view or discord.utils.MISSING)
        except discord.HTTPException:
            log.warning("could not post the now playing message in %s", self.text_channel_id,
                        exc_info=True)
            return
        self.message_id = message.id
        await self._save(voice_channel_id=getattr(self.channel, "id", None))

    async def _send(self, content: str) -> None:
        if self.text_channel_id is None:
            return
        channel = self.bot.get_partial_messageable(self.text_channel_id, guild_id=self.guild_id)
        with contextlib.suppress(discord.HTTPException):
            await channel.send(content)
