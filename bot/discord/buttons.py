"""Persistent buttons: their custom_id carries all their state, so they work after a restart.

One ``ButtonKind`` per custom_id template (``rate:<clip>:<stars>``, ``reroll:<clip>`` ...),
declared beside the cog that answers its presses. The kind makes its buttons (``kind.item``) and
its one ``DynamicItem`` class, which parses the custom_id back into the same values; the cog
hands it the handler for those values when it loads (``kind.handle``), so a press reaches the
cog without looking it up by name. Errors go to the same handler as slash commands.
"""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import discord

from cadenza.discord.errors import report_error

log = logging.getLogger(__name__)


class Field(NamedTuple):
    """One value a custom_id carries: the pattern it is written with and how it is read."""

    pattern: str
    read: Callable[[str], Any] = str


ID = Field(r"[0-9]{1,19}", int)  # a positive 64-bit integer; larger values cannot name a row


def one_of(*words: str) -> Field:
    return Field("|".join(re.escape(w) for w in words))


class Look(NamedTuple):
    """How one button is shown."""

    label: str
    emoji: str | None = None
    style: discord.ButtonStyle = discord.ButtonStyle.secondary
    row: int | None = None


Handler = Callable[..., Awaitable[None]]  # (interaction, *values) -> None

# Per bot (tests run several at once), each kind's handler by name, given by its cog while
# loaded. Kept here rather than on the kind: discord.py executes a cog's module afresh when it
# loads it as an extension, so the module other cogs imported holds a twin of each kind.
_HANDLERS: weakref.WeakKeyDictionary[Any, dict[str, Handler]] = weakref.WeakKeyDictionary()


async def _guarded(interaction: discord.Interaction,
                   action: Callable[[], Awaitable[None]]) -> None:
    # discord.py sends errors in dynamic items to a throwaway View's on_error, which only logs:
    # route them to the tree-wide handler instead, so members always get an answer.
    try:
        await action()
    except Exception as error:  # noqa: BLE001 - report_error logs unexpected ones with a trace
        await report_error(interaction, error)


class ButtonKind:
    """The buttons of one custom_id template: ``name:<field>:<field>...``.

    ``look`` gives a button's label, emoji, style and row from its values (in field order).
    """

    def __init__(self, name: str, look: Callable[..., Look], **fields: Field) -> None:
        self.name = name
        self.look = look
        self.fields = fields
        self.template = ":".join([re.escape(name)] + [f"(?P<{key}>{field.pattern})"
                                                     for key, field in fields.items()])
        self.dynamic = self._dynamic_item()

    def custom_id(self, *values: Any) -> str:
        return ":".join([self.name, *(str(v) for v in values)])

    def item(self, *values: Any) -> discord.ui.DynamicItem[discord.ui.Button]:
        """One button carrying ``values``, to add to a view."""
        return self.dynamic(*values)

    def handle(self, bot: discord.Client, handler: Handler) -> None:
        """Route this kind's presses on ``bot`` to ``handler(interaction, *values)``."""
        _HANDLERS.setdefault(bot, {})[self.name] = handler
        bot.add_dynamic_items(self.dynamic)

    def release(self, bot: discord.Client) -> None:
        _HANDLERS.get(bot, {}).pop(self.name, None)
        bot.remove_dynamic_items(self.dynamic)

    def _handler(self, bot: Any) -> Handler:
        handler = _HANDLERS.get(bot, {}).get(self.name)
        if handler is None:
            raise RuntimeError(f"no loaded cog answers the {self.name} buttons")
        return handler

    def _dynamic_item(self) -> type[discord.ui.DynamicItem[discord.ui.Button]]:
        kind = self

        class Item(discord.ui.DynamicItem[discord.ui.Button], template=self.template):
            def __init__(self, *values: Any) -> None:
                label, emoji, style, row = kind.look(*values)
                super().__init__(discord.ui.Button(label=label, emoji=emoji, style=style,
                                                   custom_id=kind.custom_id(*values), row=row))
                self.values = values

            @classmethod
            async def from_custom_id(cls, interaction: discord.Interaction,
                                     item: discord.ui.Button, match: re.Match[str], /) -> Item:
                return cls(*(field.read(match[key]) for key, field in kind.fields.items()))

            async def callback(self, interaction: discord.Interaction) -> None:
                await _guarded(interaction, lambda: kind._handler(interaction.client)(
                    interaction, *self.values))

        Item.__name__ = Item.__qualname__ = f"{self.name.capitalize()}Button"
        return Item


def persistent_view(*items: discord.ui.Item[Any]) -> discord.ui.View:
    """A view of persistent buttons: no timeout, their custom_ids carry all they need."""
    view = discord.ui.View(timeout=None)
    for item in items:
        view.add_item(item)
    return view
